package server

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// requestCodec decodes requests the way the API needs, where grpc's own
// codec falls short:
//
//   - Unknown fields are dropped, so nothing a client adds outside the
//     schema (3 MB of it, say) bypasses the field rules or gets stored.
//   - A request that does not decode (invalid UTF-8 in a string, truncated
//     bytes) must be INVALID_ARGUMENT naming the field, but grpc turns any
//     codec error into INTERNAL before an interceptor sees the call. So the
//     codec reports success with an empty message and leaves the error in
//     undecodable, where the interceptors (validateUnary, and RecvMsg of
//     streams) pick it up by the message's address.
type requestCodec struct{}

var undecodable sync.Map // proto.Message → error

func (requestCodec) Name() string { return "proto" }

func (requestCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2("proto").Marshal(v)
}

func (requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("cannot decode into %T", v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	if err := (proto.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(b, m); err != nil {
		proto.Reset(m)
		// protobuf's error does not say which field; the bytes do.
		path, _ := invalidUTF8(b, m.ProtoReflect().Descriptor(), "")
		undecodable.Store(m, decodeFailure{path: path})
	}
	return nil
}

// decodeFailure is why a request did not decode: invalid UTF-8 in the
// string field at path, or (path "") bytes that are not a message.
type decodeFailure struct{ path string }

// invalidUTF8 walks the wire bytes of a message of type md and returns the
// path of the first string field holding invalid UTF-8 ("council.display_name",
// "need.skills[2]"); ok is false when the bytes do not even parse.
func invalidUTF8(b []byte, md protoreflect.MessageDescriptor, prefix string) (path string, ok bool) {
	seen := map[protowire.Number]int{}
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		fd := md.Fields().ByNumber(num)
		if typ != protowire.BytesType || fd == nil {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return "", false
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return "", false
		}
		b = b[n:]
		p := prefix + string(fd.Name())
		if fd.IsList() {
			p = fmt.Sprintf("%s[%d]", p, seen[num])
		}
		seen[num]++
		switch {
		case fd.Kind() == protoreflect.StringKind:
			if !utf8.Valid(v) {
				return p, true
			}
		case fd.Message() != nil:
			if found, ok := invalidUTF8(v, fd.Message(), p+"."); !ok || found != "" {
				return found, ok
			}
		}
	}
	return "", true
}

// decodeError returns INVALID_ARGUMENT for a request the codec could not
// decode, nil for one it could.
func decodeError(req any) error {
	m, ok := req.(proto.Message)
	if !ok {
		return nil
	}
	v, found := undecodable.LoadAndDelete(m)
	if !found {
		return nil
	}
	if f := v.(decodeFailure); f.path != "" {
		return apierr.Field(f.path, "is not valid UTF-8 text")
	}
	return apierr.Field("request", "is not a valid %s message (truncated or malformed protobuf)", m.ProtoReflect().Descriptor().FullName())
}

// recvStream checks every message a streaming call receives.
type recvStream struct{ grpc.ServerStream }

func (s recvStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if err := decodeError(m); err != nil {
		return err
	}
	var v apierr.Violations
	checkText(&v, m.(proto.Message))
	return v.Err()
}

func decodeUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if err := decodeError(req); err != nil {
		return nil, err
	}
	return handler(ctx, req)
}

func hygieneStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, recvStream{ss})
}

// checkText applies the API's rules for text, from the schema, to every
// string of m (nested messages, lists and map values too):
//
//   - no NUL and no other C0 or C1 control character but tab, and newline
//     only in fields marked (kompetensnav.common.v1.multiline);
//   - in one-line fields, no bidirectional override or isolate characters
//     (which make text display other than it reads);
//   - a field marked (google.api.field_behavior) = REQUIRED that is set is
//     not only whitespace.
//
// Length and pattern rules are protovalidate's, in the same schema.
func checkText(v *apierr.Violations, m proto.Message) {
	walkText(v, m.ProtoReflect(), "", 0)
}

func walkText(v *apierr.Violations, m protoreflect.Message, prefix string, depth int) {
	if depth > 16 {
		return
	}
	m.Range(func(fd protoreflect.FieldDescriptor, val protoreflect.Value) bool {
		path := prefix + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Kind() == protoreflect.StringKind {
				val.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					textRule(v, fd, fmt.Sprintf("%s[%q]", path, k.String()), mv.String())
					return true
				})
			} else if fd.MapValue().Message() != nil {
				val.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
					walkText(v, mv.Message(), fmt.Sprintf("%s[%q].", path, k.String()), depth+1)
					return true
				})
			}
		case fd.IsList():
			l := val.List()
			for i := range l.Len() {
				p := fmt.Sprintf("%s[%d]", path, i)
				switch fd.Kind() {
				case protoreflect.StringKind:
					textRule(v, fd, p, l.Get(i).String())
				case protoreflect.MessageKind, protoreflect.GroupKind:
					walkText(v, l.Get(i).Message(), p+".", depth+1)
				}
			}
		case fd.Kind() == protoreflect.StringKind:
			textRule(v, fd, path, val.String())
		case fd.Message() != nil:
			walkText(v, val.Message(), path+".", depth+1)
		}
		return true
	})
}

func textRule(v *apierr.Violations, fd protoreflect.FieldDescriptor, path, s string) {
	multiline := proto.GetExtension(fd.Options(), commonv1.E_Multiline).(bool)
	for _, r := range s {
		switch {
		case r == '\t':
		case r == '\n' || r == '\r':
			if !multiline {
				v.Add(path, "must be one line (no line breaks)")
				return
			}
		case r == 0:
			v.Add(path, "must not contain NUL characters")
			return
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r <= 0x9f):
			v.Add(path, "must not contain control characters (U+%04X)", r)
			return
		case !multiline && isBidiControl(r):
			v.Add(path, "must not contain bidirectional override characters (U+%04X)", r)
			return
		case r == utf8.RuneError:
			// Decoded from invalid UTF-8: the codec refuses those first.
		}
	}
	if s != "" && strings.TrimFunc(s, unicode.IsSpace) == "" && isRequired(fd) {
		v.Add(path, "must not be blank")
	}
}

// isBidiControl: the embedding, override and isolate controls (U+202A–E,
// U+2066–9). The marks (U+200E, U+200F) are allowed: they order, not hide.
func isBidiControl(r rune) bool {
	return (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

func isRequired(fd protoreflect.FieldDescriptor) bool {
	for _, b := range proto.GetExtension(fd.Options(), annotations.E_FieldBehavior).([]annotations.FieldBehavior) {
		if b == annotations.FieldBehavior_REQUIRED {
			return true
		}
	}
	return false
}
