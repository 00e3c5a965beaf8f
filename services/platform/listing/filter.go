package listing

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"go.einride.tech/aip/filtering"
	expr "google.golang.org/genproto/googleapis/api/expr/v1alpha1"
	"google.golang.org/protobuf/proto"
)

// Filter is a parsed, type-checked AIP-160 filter. The supported subset:
// AND, OR, NOT, = and != on string and enum fields (a text value ending in
// * matches by prefix: `sni_code = "29*"`), and ":" (has) on list fields,
// e.g. `state = STATE_APPROVED AND municipalities:"1480"`.
type Filter struct {
	e     *expr.Expr
	decls *filtering.Declarations
}

// Values gives an item's values of a filter field: one for a scalar, any
// number for a list.
type Values[T any] func(item T, field string) []string

// ParseFilter parses filter against the fields declared in decls
// (filtering.DeclareIdent / DeclareEnumIdent). An empty filter matches all.
// Errors are INVALID_ARGUMENT on "filter" with a message a caller can act
// on: where the syntax broke, which field is unknown, that text values need
// quotes (`municipalities:"1480"`, not `municipalities:1480`), or which
// values an enum field takes.
func ParseFilter(filter string, decls *filtering.Declarations) (Filter, error) {
	filter = strings.TrimSpace(filter)
	if filter == "" {
		return Filter{}, nil
	}
	var p filtering.Parser
	p.Init(filter)
	parsed, err := p.Parse()
	if err != nil {
		return Filter{}, apierr.Field("filter", "%s", syntaxError(filter, err))
	}
	implicitAnd(parsed.GetExpr())
	if msg := explain(filter, parsed, parsed.GetExpr(), decls); msg != "" {
		return Filter{}, apierr.Field("filter", "%s", msg)
	}
	var c filtering.Checker
	c.Init(parsed.GetExpr(), parsed.GetSourceInfo(), decls)
	checked, err := c.Check()
	if err != nil {
		return Filter{}, apierr.Field("filter", "%s", strings.TrimPrefix(err.Error(), "check call expr: "))
	}
	if err := supported(checked.GetExpr()); err != nil {
		return Filter{}, err
	}
	return Filter{e: checked.GetExpr(), decls: decls}, nil
}

// implicitAnd makes `a b` mean `a AND b`, as AIP-160 has it: the parser
// calls it FUZZY, a function the standard declarations do not declare.
func implicitAnd(e *expr.Expr) {
	if c := e.GetCallExpr(); c != nil {
		if c.GetFunction() == filtering.FunctionFuzzyAnd {
			c.Function = filtering.FunctionAnd
		}
		for _, a := range c.GetArgs() {
			implicitAnd(a)
		}
	}
}

// syntaxError is the innermost of the parser's nested errors (the outer ones
// only name the grammar rules it was in), with the column and the text there.
func syntaxError(filter string, err error) string {
	type positioned interface {
		Position() filtering.Position
		Message() string
	}
	var at positioned
	var cause error
	for e := err; e != nil; e = errors.Unwrap(e) {
		if pe, ok := e.(positioned); ok {
			at, cause = pe, nil
		} else if cause == nil {
			cause = e
		}
	}
	if at == nil {
		return err.Error()
	}
	msg := at.Message()
	if errors.Is(cause, io.EOF) {
		msg = "unexpected end of filter"
	} else if cause != nil {
		msg += ": " + cause.Error()
	}
	out := fmt.Sprintf("syntax error at column %d: %s", at.Position().Column, msg)
	if tok := literalAt(filter, at.Position().Offset); tok != "" {
		out = fmt.Sprintf("syntax error at column %d (%q): %s", at.Position().Column, tok, msg)
		if tok[0] >= '0' && tok[0] <= '9' {
			out += fmt.Sprintf("; quote text values such as codes: %q", tok)
		}
	}
	return out
}

// literalAt is the token of the filter that starts at offset.
func literalAt(filter string, offset int32) string {
	if offset < 0 || int(offset) >= len(filter) {
		return ""
	}
	rest := filter[offset:]
	if i := strings.IndexAny(rest, " \t\r\n()"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// explain finds the mistakes callers make most (an unknown field, an
// unquoted text value, a wrong enum value) and says what to write instead,
// rather than leaving them to the type checker's terser messages.
func explain(filter string, parsed *expr.ParsedExpr, e *expr.Expr, decls *filtering.Declarations) string {
	if id := e.GetIdentExpr(); id != nil {
		if _, ok := decls.LookupIdent(id.GetName()); !ok {
			return fmt.Sprintf("unknown field %q", id.GetName())
		}
		return ""
	}
	c := e.GetCallExpr()
	if c == nil {
		return ""
	}
	if msg := supportedFunction(c.GetFunction()); msg != "" {
		return msg
	}
	if args := c.GetArgs(); len(args) == 2 && args[0].GetIdentExpr() != nil {
		if msg := explainComparison(filter, parsed, c.GetFunction(), args[0], args[1], decls); msg != "" {
			return msg
		}
	}
	for _, a := range c.GetArgs() {
		if msg := explain(filter, parsed, a, decls); msg != "" {
			return msg
		}
	}
	return ""
}

func explainComparison(filter string, parsed *expr.ParsedExpr, op string, lhs, rhs *expr.Expr, decls *filtering.Declarations) string {
	field := lhs.GetIdentExpr().GetName()
	d, ok := decls.LookupIdent(field)
	if !ok {
		return fmt.Sprintf("unknown field %q", field)
	}
	if d.GetIdent().GetValue() != nil {
		return "" // a constant on the left: the checker's business
	}
	t := d.GetIdent().GetType()
	if enum, ok := decls.LookupEnumIdent(field); ok {
		if id := rhs.GetIdentExpr(); id != nil {
			if v, ok := decls.LookupIdent(id.GetName()); ok && v.GetIdent().GetValue() != nil && proto.Equal(v.GetIdent().GetType(), t) {
				return ""
			}
		}
		values := enum.Descriptor().Values()
		names := make([]string, 0, values.Len())
		for i := range values.Len() {
			names = append(names, string(values.Get(i).Name()))
		}
		return fmt.Sprintf("%s takes a value name without quotes, one of %s (e.g. %s %s %s)",
			field, strings.Join(names, ", "), field, op, names[len(names)-1])
	}
	isList := t.GetListType() != nil
	isText := t.GetPrimitive() == expr.Type_STRING || t.GetListType().GetElemType().GetPrimitive() == expr.Type_STRING
	if !isText {
		return ""
	}
	value := literalAt(filter, parsed.GetSourceInfo().GetPositions()[rhs.GetId()])
	numeric := false
	switch rhs.GetConstExpr().GetConstantKind().(type) {
	case *expr.Constant_Int64Value, *expr.Constant_Uint64Value, *expr.Constant_DoubleValue:
		numeric, value = true, strconv.Quote(value)
	}
	if id := rhs.GetIdentExpr(); id != nil {
		if _, ok := decls.LookupIdent(id.GetName()); !ok {
			return fmt.Sprintf("%q is not a field; to compare %s with text, quote it: %s %s %q", id.GetName(), field, field, op, id.GetName())
		}
	}
	if isList && op != filtering.FunctionHas {
		return fmt.Sprintf("%s is a list: test whether it holds a value with \":\", e.g. %s:%s", field, field, value)
	}
	if numeric {
		return fmt.Sprintf("%s holds text, so quote the value: %s%s%s", field, field, op, value)
	}
	return ""
}

func supportedFunction(name string) string {
	switch name {
	case filtering.FunctionAnd, filtering.FunctionFuzzyAnd, filtering.FunctionOr, filtering.FunctionNot,
		filtering.FunctionEquals, filtering.FunctionNotEquals, filtering.FunctionHas:
		return ""
	}
	return fmt.Sprintf("operator %q is not supported; use =, !=, :, AND, OR, NOT", name)
}

func supported(e *expr.Expr) error {
	if e == nil {
		return nil
	}
	if c := e.GetCallExpr(); c != nil {
		if msg := supportedFunction(c.GetFunction()); msg != "" {
			return apierr.Field("filter", "%s", msg)
		}
		for _, a := range c.GetArgs() {
			if err := supported(a); err != nil {
				return err
			}
		}
	}
	return nil
}

// Match reports whether item passes the filter.
func Match[T any](f Filter, item T, values Values[T]) bool {
	if f.e == nil {
		return true
	}
	return eval(f.e, func(ident string) ([]string, bool) {
		if d, ok := f.decls.LookupIdent(ident); ok && d.GetIdent().GetValue() != nil {
			return nil, false // an enum value, not a field
		}
		return values(item, ident), true
	})
}

func eval(e *expr.Expr, values func(string) ([]string, bool)) bool {
	c := e.GetCallExpr()
	if c == nil {
		return false
	}
	args := c.GetArgs()
	switch c.GetFunction() {
	case filtering.FunctionAnd, filtering.FunctionFuzzyAnd:
		for _, a := range args {
			if !eval(a, values) {
				return false
			}
		}
		return true
	case filtering.FunctionOr:
		for _, a := range args {
			if eval(a, values) {
				return true
			}
		}
		return false
	case filtering.FunctionNot:
		return len(args) == 1 && !eval(args[0], values)
	}
	if len(args) != 2 {
		return false
	}
	lhs, rhs := operand(args[0], values), operand(args[1], values)
	if len(rhs) != 1 {
		return false
	}
	switch c.GetFunction() {
	case filtering.FunctionEquals:
		return len(lhs) == 1 && equalOrPrefix(lhs[0], rhs[0], args[1])
	case filtering.FunctionNotEquals:
		return !(len(lhs) == 1 && equalOrPrefix(lhs[0], rhs[0], args[1]))
	case filtering.FunctionHas:
		return slices.Contains(lhs, rhs[0])
	}
	return false
}

// equalOrPrefix compares a value with a constant; a text constant ending in
// "*" matches by prefix (AIP-160's wildcard: `sni_code = "29*"`).
func equalOrPrefix(v, want string, e *expr.Expr) bool {
	if p, ok := strings.CutSuffix(want, "*"); ok && e.GetConstExpr().GetStringValue() != "" {
		return strings.HasPrefix(v, p)
	}
	return v == want
}

// operand is a field's values, or a constant (an enum value name is an
// identifier the checker resolved to a constant of the enum).
func operand(e *expr.Expr, values func(string) ([]string, bool)) []string {
	if id := e.GetIdentExpr(); id != nil {
		if v, isField := values(id.GetName()); isField {
			return v
		}
		return []string{id.GetName()}
	}
	if k := e.GetConstExpr(); k != nil {
		switch v := k.GetConstantKind().(type) {
		case *expr.Constant_StringValue:
			return []string{v.StringValue}
		case *expr.Constant_Int64Value:
			return []string{strconv.FormatInt(v.Int64Value, 10)}
		case *expr.Constant_BoolValue:
			return []string{strconv.FormatBool(v.BoolValue)}
		}
	}
	return nil
}

// Terms are the equality tests ANDed at the top of the filter, as (field,
// value) pairs: `f = v` on a field and `f:"v"` on a list field, with enum
// values by name. all is true when the filter is nothing but those terms
// (an empty filter too), so a row in the intersection of the terms' index
// sets matches it without further checks.
func (f Filter) Terms() (terms [][2]string, all bool) {
	if f.e == nil {
		return nil, true
	}
	all = true
	var walk func(e *expr.Expr)
	walk = func(e *expr.Expr) {
		c := e.GetCallExpr()
		if c == nil {
			all = false
			return
		}
		switch c.GetFunction() {
		case filtering.FunctionAnd, filtering.FunctionFuzzyAnd:
			for _, a := range c.GetArgs() {
				walk(a)
			}
			return
		case filtering.FunctionEquals, filtering.FunctionHas:
			if args := c.GetArgs(); len(args) == 2 && args[0].GetIdentExpr() != nil {
				field := args[0].GetIdentExpr().GetName()
				if d, ok := f.decls.LookupIdent(field); ok && d.GetIdent().GetValue() == nil {
					isList := d.GetIdent().GetType().GetListType() != nil
					if isList == (c.GetFunction() == filtering.FunctionHas) {
						if v := operand(args[1], func(string) ([]string, bool) { return nil, false }); len(v) == 1 &&
							!(args[1].GetConstExpr() != nil && strings.HasSuffix(v[0], "*")) {
							terms = append(terms, [2]string{field, v[0]})
							return
						}
					}
				}
			}
		}
		all = false
	}
	walk(f.e)
	return terms, all
}
