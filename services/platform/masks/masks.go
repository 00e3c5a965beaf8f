// Package masks applies AIP-134 update masks the same way in every service.
package masks

import (
	"slices"
	"strings"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"go.einride.tech/aip/fieldmask"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

// Apply copies the fields the mask names from src onto dst.
//
//   - An empty mask means the fields populated in src, which is what a REST
//     PATCH body says (the gateway also derives the mask from the body).
//   - "*" means every mutable field: a full replacement.
//   - Paths naming ignored fields (identifier and output-only ones such as
//     name, etag, create_time) are skipped, as AIP-203 asks, so a client can
//     send back the resource it read.
//   - Any other path, or a path into a sub-field, is INVALID_ARGUMENT on
//     update_mask and nothing is changed.
func Apply(mask *fieldmaskpb.FieldMask, dst, src proto.Message, mutable, ignored []string) error {
	var paths []string
	switch {
	case len(mask.GetPaths()) == 0:
		src.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
			if slices.Contains(mutable, string(fd.Name())) {
				paths = append(paths, string(fd.Name()))
			}
			return true
		})
	case fieldmask.IsFullReplacement(mask):
		paths = mutable
	default:
		for _, p := range mask.GetPaths() {
			switch {
			case slices.Contains(mutable, p):
				paths = append(paths, p)
			case slices.Contains(ignored, p):
			default:
				return apierr.Field("update_mask", "%q cannot be updated; updatable fields: %s", p, strings.Join(mutable, ", "))
			}
		}
	}
	if len(paths) > 0 {
		fieldmask.Update(&fieldmaskpb.FieldMask{Paths: paths}, dst, src)
	}
	return nil
}
