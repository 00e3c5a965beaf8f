package masks_test

import (
	"testing"

	councilsv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/councils/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/masks"
	"github.com/kompetensnav/kompetensnav/services/platform/testkit"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
)

var (
	mutable = []string{"display_name", "contact_email", "municipalities"}
	ignored = []string{"name", "etag"}
)

func stored() *councilsv1.SectorCouncil {
	return &councilsv1.SectorCouncil{Name: "councils/a", DisplayName: "A", ContactEmail: "a@example.org", Municipalities: []string{"1480"}, Etag: "e1"}
}

func TestApply(t *testing.T) {
	src := &councilsv1.SectorCouncil{Name: "councils/other", DisplayName: "B", Etag: "client"}
	mask := func(p ...string) *fieldmaskpb.FieldMask { return &fieldmaskpb.FieldMask{Paths: p} }

	// Empty mask: what src sets, mutable fields only.
	dst := stored()
	if err := masks.Apply(nil, dst, src, mutable, ignored); err != nil {
		t.Fatal(err)
	}
	if dst.GetDisplayName() != "B" || dst.GetContactEmail() != "a@example.org" || dst.GetName() != "councils/a" || dst.GetEtag() != "e1" {
		t.Fatalf("empty mask: %v", dst)
	}

	// Named paths: set or clear exactly those; ignored ones skipped.
	dst = stored()
	if err := masks.Apply(mask("contact_email", "name", "etag"), dst, src, mutable, ignored); err != nil {
		t.Fatal(err)
	}
	if dst.GetContactEmail() != "" || dst.GetDisplayName() != "A" || dst.GetName() != "councils/a" {
		t.Fatalf("named paths: %v", dst)
	}

	// "*": every mutable field, identity untouched.
	dst = stored()
	if err := masks.Apply(mask("*"), dst, src, mutable, ignored); err != nil {
		t.Fatal(err)
	}
	if dst.GetDisplayName() != "B" || dst.GetContactEmail() != "" || len(dst.GetMunicipalities()) != 0 || dst.GetName() != "councils/a" {
		t.Fatalf("full replacement: %v", dst)
	}

	// Unknown or immutable paths, and sub-field paths, are refused and change nothing.
	for _, p := range []string{"sector", "colour", "display_name.x"} {
		dst = stored()
		testkit.WantBadRequest(t, masks.Apply(mask("display_name", p), dst, src, mutable, ignored), "update_mask")
		if dst.GetDisplayName() != "A" {
			t.Fatalf("%q: refused mask changed the resource", p)
		}
	}
}
