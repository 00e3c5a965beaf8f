package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// strict checks a request against its route before grpc-gateway decodes it,
// so that every mistake is a 400 naming the parameter or body field by its
// JSON path, and nothing a client sends is silently ignored:
//
//   - path and query values must be UTF-8 (they become proto strings);
//   - every query parameter must be a field of the request that the path
//     and the body do not bind, given once unless it is a list, with a
//     value of the field's type (`requestid` is not `requestId`);
//   - a body must be application/json (a cross-site form post is not) and
//     decode into its message, or the error names the field;
//   - If-Match is the etag of the write, or refused where there is none.
func (g *Gateway) strict(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		// Without credentials the answer is 401 whatever else is wrong:
		// the services authenticate, but a missing header needs no service
		// to tell, and an anonymous caller learns nothing of the API's rules.
		if r.Header.Get("Authorization") == "" {
			if wait, ok := g.anonymous.reserve(r); !ok {
				g.refuse(w, r, &refusal{http.StatusTooManyRequests, tooMany(wait, "too many calls without credentials from this address")})
				return
			}
			g.refuse(w, r, &refusal{http.StatusUnauthorized, status.Error(codes.Unauthenticated,
				"missing credentials: send the header authorization: Bearer <API key>")})
			return
		}
		p, ok := runtime.HTTPPattern(r.Context())
		if !ok {
			next(w, r, params)
			return
		}
		rt := g.routes[r.Method+" "+p.String()]
		if rt == nil {
			next(w, r, params)
			return
		}
		if err := checkPath(params); err == nil {
			err = checkQuery(r, rt)
			if err == nil {
				err = g.checkBody(r, rt)
			}
			if err != nil {
				g.refuse(w, r, err)
				return
			}
		} else {
			g.refuse(w, r, err)
			return
		}
		next(w, r, params)
	}
}

// refusal is a request the gateway answers itself: HTTP status and error.
type refusal struct {
	status int
	err    error
}

func (e *refusal) Error() string { return e.err.Error() }

func badField(field, format string, args ...any) error {
	return &refusal{http.StatusBadRequest, apierr.Field(field, format, args...)}
}

func (g *Gateway) refuse(w http.ResponseWriter, r *http.Request, err error) {
	var rf *refusal
	if !errors.As(err, &rf) {
		rf = &refusal{http.StatusBadRequest, err}
	}
	runtime.HTTPError(r.Context(), g.mux, apiJSON, w, r, &runtime.HTTPStatusError{HTTPStatus: rf.status, Err: rf.err})
}

func checkPath(params map[string]string) error {
	for k, v := range params {
		if !utf8.ValidString(v) {
			return badField(jsonPath(k), "is not valid UTF-8 text")
		}
	}
	return nil
}

func checkQuery(r *http.Request, rt *route) error {
	if r.URL.RawQuery == "" {
		return nil
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return badField("query", "the query string is malformed: %s", strings.TrimPrefix(err.Error(), "invalid URL escape "))
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range q {
			if !yield(k) {
				return
			}
		}
	})
	for _, key := range keys {
		if !utf8.ValidString(key) {
			return badField("query", "a parameter name is not valid UTF-8 text")
		}
		fd, path := queryField(rt, key)
		if fd == nil {
			allowed := allowedQuery(rt)
			if len(allowed) == 0 {
				return badField(key, "is not a parameter of this request, which takes no query parameters")
			}
			return badField(key, "is not a parameter of this request; it takes: %s (names are case-sensitive)", strings.Join(allowed, ", "))
		}
		vals := q[key]
		if len(vals) > 1 && !fd.IsList() {
			return badField(key, "is given %d times; give it once", len(vals))
		}
		for _, v := range vals {
			if err := checkValue(fd, v); err != nil {
				return badField(jsonPath(path), "%s", err)
			}
		}
	}
	return nil
}

// queryField resolves a query parameter (proto or JSON spelling, dotted for
// nested fields) to a field the query may set, and its proto path.
func queryField(rt *route, key string) (protoreflect.FieldDescriptor, string) {
	md := rt.input
	var path []string
	var fd protoreflect.FieldDescriptor
	for i, seg := range strings.Split(key, ".") {
		if md == nil {
			return nil, ""
		}
		fd = md.Fields().ByName(protoreflect.Name(seg))
		if fd == nil {
			fd = md.Fields().ByJSONName(seg)
		}
		if fd == nil || fd.IsMap() {
			return nil, ""
		}
		path = append(path, string(fd.Name()))
		p := strings.Join(path, ".")
		if rt.path[p] || (i == 0 && (rt.body == "*" || rt.body == p)) {
			return nil, "" // bound by the path or carried by the body
		}
		md = nil
		if fd.Message() != nil && !fd.IsList() {
			md = fd.Message()
		}
	}
	if fd.Message() != nil && !isQueryable(fd.Message()) {
		return nil, ""
	}
	return fd, strings.Join(path, ".")
}

// isQueryable: the message types grpc-gateway reads from one query value.
func isQueryable(md protoreflect.MessageDescriptor) bool {
	switch md.FullName() {
	case "google.protobuf.FieldMask", "google.protobuf.Timestamp", "google.protobuf.Duration",
		"google.protobuf.StringValue", "google.protobuf.Int32Value", "google.protobuf.Int64Value",
		"google.protobuf.BoolValue", "google.type.Date":
		return true
	}
	return false
}

// allowedQuery lists the top-level query parameters of rt, JSON spelling.
func allowedQuery(rt *route) []string {
	if rt.body == "*" {
		return nil
	}
	var out []string
	fields := rt.input.Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := string(fd.Name())
		if rt.path[name] || rt.body == name || fd.IsMap() || (fd.Message() != nil && !isQueryable(fd.Message())) {
			continue
		}
		out = append(out, fd.JSONName())
	}
	return out
}

func checkValue(fd protoreflect.FieldDescriptor, v string) error {
	if !utf8.ValidString(v) {
		return errors.New("is not valid UTF-8 text")
	}
	switch fd.Kind() {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		if _, err := strconv.ParseInt(v, 10, 32); err != nil {
			return fmt.Errorf("must be a whole number, not %q", v)
		}
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		if _, err := strconv.ParseInt(v, 10, 64); err != nil {
			return fmt.Errorf("must be a whole number, not %q", v)
		}
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if _, err := strconv.ParseUint(v, 10, 64); err != nil {
			return fmt.Errorf("must be a whole number ≥ 0, not %q", v)
		}
	case protoreflect.BoolKind:
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("must be true or false, not %q", v)
		}
	case protoreflect.EnumKind:
		vals := fd.Enum().Values()
		if vals.ByName(protoreflect.Name(v)) == nil {
			if n, err := strconv.Atoi(v); err != nil || vals.ByNumber(protoreflect.EnumNumber(n)) == nil {
				names := make([]string, 0, vals.Len())
				for i := range vals.Len() {
					names = append(names, string(vals.Get(i).Name()))
				}
				return fmt.Errorf("must be one of %s, not %q", strings.Join(names, ", "), v)
			}
		}
	case protoreflect.MessageKind:
		return checkMessageValue(fd.Message(), v)
	}
	return nil
}

// checkMessageValue checks a query value for a message field the way
// grpc-gateway will parse it, so that its parse error (Go's "parsing time
// … as 2006-01-02T15:04:05…") never reaches the client.
func checkMessageValue(md protoreflect.MessageDescriptor, v string) error {
	var err error
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		var t time.Time
		if t, err = time.Parse(time.RFC3339Nano, v); err == nil && !timestamppb.New(t).IsValid() {
			err = errors.New("out of range")
		}
		if err != nil {
			return fmt.Errorf("must be a time in RFC 3339 form, such as 2026-03-02T09:00:00Z, not %q", v)
		}
	case "google.protobuf.Duration":
		if _, err = time.ParseDuration(v); err != nil {
			return fmt.Errorf("must be a duration such as 90s or 1h30m, not %q", v)
		}
	case "google.protobuf.Int32Value":
		_, err = strconv.ParseInt(v, 10, 32)
	case "google.protobuf.Int64Value":
		_, err = strconv.ParseInt(v, 10, 64)
	case "google.protobuf.UInt32Value":
		_, err = strconv.ParseUint(v, 10, 32)
	case "google.protobuf.UInt64Value":
		_, err = strconv.ParseUint(v, 10, 64)
	case "google.protobuf.BoolValue":
		if _, err = strconv.ParseBool(v); err != nil {
			return fmt.Errorf("must be true or false, not %q", v)
		}
	case dateName: // queryParser reads it
		if _, err := parseDate(v); err != nil {
			return fmt.Errorf("must be a calendar date written YYYY-MM-DD (or its parts as .year, .month and .day), not %q", v)
		}
	}
	if err != nil {
		return fmt.Errorf("must be a whole number, not %q", v)
	}
	return nil
}

// checkBody enforces the content type, applies If-Match, and decodes the
// body once to name the field of any error.
func (g *Gateway) checkBody(r *http.Request, rt *route) error {
	body, err := io.ReadAll(r.Body) // limitBody already read it into memory
	if err != nil {
		return badField("body", "could not be read")
	}
	defer func() { r.Body = io.NopCloser(bytes.NewReader(body)); r.ContentLength = int64(len(body)) }()
	hasBody := len(bytes.TrimSpace(body)) > 0
	if hasBody && rt.body == "" {
		return badField("body", "this request takes no body")
	}
	if hasBody {
		ct := r.Header.Get("Content-Type")
		mt, params, err := mime.ParseMediaType(ct)
		if ct == "" || err != nil || mt != "application/json" || (params["charset"] != "" && !strings.EqualFold(params["charset"], "utf-8")) {
			return &refusal{http.StatusUnsupportedMediaType, apierr.Field("Content-Type",
				"must be application/json (UTF-8), not %q", ct)}
		}
	}
	if im := r.Header.Get("If-Match"); im != "" {
		if body, err = ifMatch(rt, r, body, im); err != nil {
			return err
		}
		hasBody = len(body) > 0
	}
	if !hasBody || rt.bodyMsg == nil {
		return nil
	}
	if !utf8.Valid(body) {
		return badField(bodyPrefix(rt, ""), "is not valid UTF-8")
	}
	if se := jsonSyntax(body); se != nil {
		return se.at(rt, body)
	}
	m := dynamicpb.NewMessage(rt.bodyMsg)
	if err := apiJSON.Unmarshal(body, m); err != nil {
		return bodyError(rt, body, err)
	}
	return nil
}

// syntaxError is a body that is not one JSON value, at offset.
type syntaxError struct {
	offset int
	msg    string
}

func (e *syntaxError) Error() string { return e.msg }

func (e *syntaxError) at(rt *route, body []byte) error {
	return badField(bodyPrefix(rt, jsonPathAt(body, e.offset)), "request body is not valid JSON: %s (at byte %d)", e.msg, e.offset)
}

// jsonSyntax checks that body is exactly one JSON value (grpc-gateway's
// decoder would stop after the first and ignore the rest).
func jsonSyntax(body []byte) *syntaxError {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v json.RawMessage
	if err := dec.Decode(&v); err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			return &syntaxError{int(se.Offset), se.Error()}
		case errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF):
			return &syntaxError{len(body), "it ends too early"}
		}
		return &syntaxError{0, err.Error()}
	}
	if dec.More() {
		return &syntaxError{int(dec.InputOffset()), "more than one JSON value"}
	}
	return nil
}

// bodyPrefix is the JSON path of what the body carries, joined with p.
func bodyPrefix(rt *route, p string) string {
	switch {
	case rt.body == "*" && p == "":
		return "body"
	case rt.body == "*":
		return p
	case p == "":
		return jsonName(rt.body)
	}
	return jsonName(rt.body) + "." + p
}

var (
	jsonErrorPos = regexp.MustCompile(`\(line (\d+):(\d+)\):?[ \x{00a0}]*`)
	protoPrefix  = regexp.MustCompile(`proto:[ \x{00a0}]*`)
)

// bodyError turns protojson's error (which gives a line and column, and for
// some errors a field name without its path) into a BadRequest naming the
// JSON path of the offending field.
func bodyError(rt *route, body []byte, err error) error {
	// protobuf writes "proto:" followed by a space or, at random, a
	// no-break space (so that nobody matches its messages); either goes.
	msg := protoPrefix.ReplaceAllString(err.Error(), "")
	m := jsonErrorPos.FindStringSubmatchIndex(msg)
	if m == nil {
		return badField(bodyPrefix(rt, ""), "%s", msg)
	}
	line, _ := strconv.Atoi(msg[m[2]:m[3]])
	col, _ := strconv.Atoi(msg[m[4]:m[5]])
	desc := strings.TrimSpace(msg[:m[0]] + msg[m[1]:])
	desc = strings.TrimPrefix(desc, "syntax error")
	desc = strings.TrimPrefix(strings.TrimSpace(desc), ": ")
	desc = protoPrefix.ReplaceAllString(desc, "")
	return badField(bodyPrefix(rt, jsonPathAt(body, offsetOf(body, line, col))), "%s", desc)
}

// offsetOf is the byte offset of a 1-based line and column counted in runes,
// as protojson reports positions.
func offsetOf(b []byte, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := bytes.IndexByte(b[off:], '\n')
		if i < 0 {
			return len(b)
		}
		off += i + 1
	}
	for c := 1; c < col && off < len(b); c++ {
		_, n := utf8.DecodeRune(b[off:])
		off += n
	}
	return off
}

// jsonPathAt is the path ("skills[2]", "neededBy.year") of the JSON value or
// key at offset in b, or of where the JSON breaks off before it.
func jsonPathAt(b []byte, offset int) string {
	type frame struct {
		array bool
		key   string
		index int
		want  bool // object: the next string is a key
	}
	var stack []frame
	path := func() string {
		var s strings.Builder
		for _, f := range stack {
			switch {
			case f.array:
				fmt.Fprintf(&s, "[%d]", f.index)
			case f.key != "":
				if s.Len() > 0 {
					s.WriteByte('.')
				}
				s.WriteString(f.key)
			}
		}
		return s.String()
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	for {
		tok, err := dec.Token()
		end := int(dec.InputOffset())
		if err != nil {
			return path()
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if !top.array && top.want {
				if k, ok := tok.(string); ok {
					top.key, top.want = k, false
					if offset < end {
						return path()
					}
					continue
				}
			}
		}
		if offset < end {
			return path()
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, frame{want: true})
			continue
		case json.Delim('['):
			stack = append(stack, frame{array: true, index: 0})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
		// A value ended: the container moves on to its next key or element.
		if len(stack) > 0 {
			if top := &stack[len(stack)-1]; top.array {
				top.index++
			} else {
				top.want = true
			}
		}
	}
}

// ifMatch makes the If-Match header the etag of the write: the request's
// etag field, or its body resource's. A body etag that says otherwise, or
// a request without an etag, is refused.
func ifMatch(rt *route, r *http.Request, body []byte, header string) ([]byte, error) {
	etag := strings.TrimPrefix(strings.TrimSpace(header), "W/")
	etag = strings.Trim(etag, `"`)
	if etag == "*" {
		return body, nil // any current version: nothing to check
	}
	if etag == "" || strings.ContainsAny(etag, `", `) {
		return nil, badField("If-Match", "must be one etag, as returned in the resource's etag field")
	}
	// The etag of a verb or a delete is the request's own field; an update
	// (PATCH, PUT) carries it on the resource in the body. A create has
	// none to match.
	inBody := rt.bodyMsg != nil && rt.bodyMsg.Fields().ByName("etag") != nil &&
		(rt.body == "*" || r.Method == http.MethodPatch || r.Method == http.MethodPut)
	switch {
	case inBody:
		obj := map[string]json.RawMessage{}
		if len(bytes.TrimSpace(body)) > 0 {
			if err := json.Unmarshal(body, &obj); err != nil {
				return nil, badField(bodyPrefix(rt, ""), "must be a JSON object")
			}
		}
		if prev, ok := obj["etag"]; ok {
			var s string
			if json.Unmarshal(prev, &s) != nil || s != etag {
				return nil, badField(bodyPrefix(rt, "etag"), "differs from the If-Match header; send one or the other")
			}
		}
		obj["etag"], _ = json.Marshal(etag)
		return json.Marshal(obj)
	case rt.body == "" && rt.input.Fields().ByName("etag") != nil:
		q := r.URL.Query()
		if prev := q.Get("etag"); prev != "" && prev != etag {
			return nil, badField("etag", "differs from the If-Match header; send one or the other")
		}
		q.Set("etag", etag)
		r.URL.RawQuery = q.Encode()
		return body, nil
	}
	return nil, badField("If-Match", "this request has no etag to match")
}
