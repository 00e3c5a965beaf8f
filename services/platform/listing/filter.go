package listing

import (
	"slices"
	"strconv"

	"github.com/kompetensnav/kompetensnav/services/platform/apierr"
	"go.einride.tech/aip/filtering"
	expr "google.golang.org/genproto/googleapis/api/expr/v1alpha1"
)

// Filter is a parsed, type-checked AIP-160 filter. The supported subset:
// AND, OR, NOT, = and != on string and enum fields, and ":" (has) on list
// fields, e.g. `state = STATE_APPROVED AND municipalities:"1480"`.
type Filter struct {
	e     *expr.Expr
	decls *filtering.Declarations
}

// Values gives an item's values of a filter field: one for a scalar, any
// number for a list.
type Values[T any] func(item T, field string) []string

// ParseFilter parses filter against the fields declared in decls
// (filtering.DeclareIdent / DeclareEnumIdent). An empty filter matches all.
func ParseFilter(filter string, decls *filtering.Declarations) (Filter, error) {
	f, err := filtering.ParseFilterString(filter, decls)
	if err != nil {
		return Filter{}, apierr.Field("filter", "%v", err)
	}
	if err := supported(f.CheckedExpr.GetExpr()); err != nil {
		return Filter{}, err
	}
	return Filter{e: f.CheckedExpr.GetExpr(), decls: decls}, nil
}

func supported(e *expr.Expr) error {
	if e == nil {
		return nil
	}
	if c := e.GetCallExpr(); c != nil {
		switch c.GetFunction() {
		case filtering.FunctionAnd, filtering.FunctionFuzzyAnd, filtering.FunctionOr, filtering.FunctionNot,
			filtering.FunctionEquals, filtering.FunctionNotEquals, filtering.FunctionHas:
		default:
			return apierr.Field("filter", "operator %q is not supported; use =, !=, :, AND, OR, NOT", c.GetFunction())
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
		return len(lhs) == 1 && lhs[0] == rhs[0]
	case filtering.FunctionNotEquals:
		return !(len(lhs) == 1 && lhs[0] == rhs[0])
	case filtering.FunctionHas:
		return slices.Contains(lhs, rhs[0])
	}
	return false
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
