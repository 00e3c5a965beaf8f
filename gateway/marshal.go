package gateway

import (
	"bytes"
	"encoding/json"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// responseJSON writes responses as apiJSON does, except that an empty list
// at the top of a response is written as [] rather than left out: a list
// response with no items says "needs": [], which clients can iterate
// without checking for a missing field. (protojson's EmitUnpopulated would
// also write every zero-valued scalar.)
type responseJSON struct{ *runtime.JSONPb }

func (m responseJSON) Marshal(v any) ([]byte, error) {
	b, err := m.JSONPb.Marshal(v)
	if err != nil {
		return b, err
	}
	msg, ok := v.(proto.Message)
	if !ok || len(b) < 2 || b[0] != '{' {
		return b, nil
	}
	var empty []string
	fields := msg.ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		if fd.Cardinality() == protoreflect.Repeated && !fd.IsMap() && msg.ProtoReflect().Get(fd).List().Len() == 0 {
			empty = append(empty, fd.JSONName())
		}
	}
	if len(empty) == 0 {
		return b, nil
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, name := range empty {
		k, _ := json.Marshal(name)
		buf.Write(k)
		buf.WriteString(":[]")
		if i < len(empty)-1 || len(bytes.TrimSpace(b[1:len(b)-1])) > 0 {
			buf.WriteByte(',')
		}
	}
	buf.Write(b[1:])
	return buf.Bytes(), nil
}
