package gateway

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// dateName is the message type whose query parameters may be written as one
// ISO 8601 date.
const dateName protoreflect.FullName = "google.type.Date"

// queryParser is grpc-gateway's query parser, plus dates: a
// google.type.Date parameter may be written as one value,
// startDate=2026-01-01, as well as field by field
// (startDate.year=2026&startDate.month=1&startDate.day=1), which is all
// grpc-gateway itself reads. The strict check (checkValue) has already
// refused a value that is no YYYY-MM-DD date.
type queryParser struct{ runtime.DefaultQueryParser }

func (p *queryParser) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	md := msg.ProtoReflect().Descriptor()
	var rewritten url.Values
	for key, vs := range values {
		fd := fieldAt(md, key)
		if fd == nil || fd.IsList() || fd.Message() == nil || fd.Message().FullName() != dateName || len(vs) != 1 {
			continue
		}
		t, err := parseDate(vs[0])
		if err != nil {
			continue // grpc-gateway's own error then
		}
		if rewritten == nil {
			rewritten = url.Values{}
			for k, v := range values {
				rewritten[k] = v
			}
		}
		delete(rewritten, key)
		rewritten.Set(key+".year", strconv.Itoa(t.Year()))
		rewritten.Set(key+".month", strconv.Itoa(int(t.Month())))
		rewritten.Set(key+".day", strconv.Itoa(t.Day()))
	}
	if rewritten != nil {
		values = rewritten
	}
	return p.DefaultQueryParser.Parse(msg, values, filter)
}

// grpc-gateway keeps its query parser in a package variable, which its
// mux option sets; setting it once here, before any request can read it,
// keeps gateways made concurrently (tests) from racing on it.
func init() { runtime.SetQueryParameterParser(&queryParser{})(nil) }

// parseDate reads YYYY-MM-DD, a real calendar date.
func parseDate(v string) (time.Time, error) { return time.Parse(time.DateOnly, v) }

// fieldAt resolves a dotted query key (proto or JSON names) to its field.
func fieldAt(md protoreflect.MessageDescriptor, key string) protoreflect.FieldDescriptor {
	var fd protoreflect.FieldDescriptor
	for seg := range strings.SplitSeq(key, ".") {
		if md == nil {
			return nil
		}
		if fd = md.Fields().ByName(protoreflect.Name(seg)); fd == nil {
			fd = md.Fields().ByJSONName(seg)
		}
		if fd == nil {
			return nil
		}
		md = fd.Message()
	}
	return fd
}
