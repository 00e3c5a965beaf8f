package auth

import (
	"sync"

	commonv1 "github.com/kompetensnav/kompetensnav/gen/kompetensnav/common/v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// IsSensitive reports whether a field is marked
// (kompetensnav.common.v1.sensitive) = true.
func IsSensitive(fd protoreflect.FieldDescriptor) bool {
	opts := fd.Options()
	if opts == nil {
		return false
	}
	v, _ := proto.GetExtension(opts, commonv1.E_Sensitive).(bool)
	return v
}

// holds caches, per message type, whether it or any message it can contain
// has a sensitive field, so that responses without any (most) cost one map
// lookup.
var holds sync.Map // protoreflect.FullName → bool

// HasSensitive reports whether messages of type md can carry a sensitive
// field, at any depth.
func HasSensitive(md protoreflect.MessageDescriptor) bool {
	if v, ok := holds.Load(md.FullName()); ok {
		return v.(bool)
	}
	v := hasSensitive(md, map[protoreflect.FullName]bool{})
	holds.Store(md.FullName(), v)
	return v
}

func hasSensitive(md protoreflect.MessageDescriptor, seen map[protoreflect.FullName]bool) bool {
	if seen[md.FullName()] {
		return false // a recursive type: its fields are being looked at already
	}
	seen[md.FullName()] = true
	fields := md.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if IsSensitive(fd) {
			return true
		}
		if fd.IsMap() {
			fd = fd.MapValue()
		}
		if fd.Message() != nil && hasSensitive(fd.Message(), seen) {
			return true
		}
	}
	return false
}

// Redact clears every sensitive field that is set in m, at any depth
// (inside nested messages, lists and map values), and returns how many it
// cleared. It is the one place a response loses what its reader may not
// see; handlers never mask by hand.
func Redact(m proto.Message) int { return visit(m.ProtoReflect(), true) }

// Sensitive counts the sensitive fields set in m, at any depth.
func Sensitive(m proto.Message) int { return visit(m.ProtoReflect(), false) }

func visit(m protoreflect.Message, clear bool) int {
	if !m.IsValid() || !HasSensitive(m.Descriptor()) {
		return 0
	}
	n := 0
	var cleared []protoreflect.FieldDescriptor
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case IsSensitive(fd):
			n++
			cleared = append(cleared, fd)
		case fd.IsList() && fd.Message() != nil:
			l := v.List()
			for i := range l.Len() {
				n += visit(l.Get(i).Message(), clear)
			}
		case fd.IsMap() && fd.MapValue().Message() != nil:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				n += visit(mv.Message(), clear)
				return true
			})
		case fd.Message() != nil && !fd.IsList() && !fd.IsMap():
			n += visit(v.Message(), clear)
		}
		return true
	})
	if clear {
		for _, fd := range cleared {
			m.Clear(fd)
		}
	}
	return n
}
