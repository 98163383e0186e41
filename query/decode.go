package query

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"
)

// object is a JSON object decoded one member at a time. Decoding by hand instead of into a
// struct lets every error name its field (with a path such as "stages[2].probability"), tells
// absent from null (PATCH semantics), refuses JSON numbers for money, and reports all unknown
// and mistyped members at once instead of the first only.
type object struct {
	prefix  string
	members map[string]json.RawMessage
	used    map[string]bool
	errs    *[]fieldError // shared with nested objects, so one problem lists everything
	unknown *[]fieldError
}

// readBody reads the (size-limited) request body. An empty body reads as {} so that endpoints
// whose members are all optional need no body, and missing required members are reported by
// validation, naming each field.
func readBody(r *http.Request) ([]byte, *problem) {
	if r.Body == nil {
		return []byte("{}"), nil
	}
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newProblem(http.StatusRequestEntityTooLarge, codeBodyTooLarge,
				fmt.Sprintf("The request body exceeds %d bytes.", mbe.Limit))
		}
		return nil, newProblem(http.StatusBadRequest, codeMalformedJSON, "The request body could not be read.")
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return []byte("{}"), nil
	}
	return data, nil
}

// decodeBody reads the request body as a JSON object.
func decodeBody(r *http.Request) (*object, *problem) {
	data, p := readBody(r)
	if p != nil {
		return nil, p
	}
	return parseObject(data)
}

// parseObject parses data, which must hold exactly one JSON object in valid UTF-8.
func parseObject(data []byte) (*object, *problem) {
	if !utf8.Valid(data) {
		return nil, newProblem(http.StatusBadRequest, codeMalformedJSON, "The request body is not valid UTF-8.")
	}
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		if !json.Valid(data) {
			return nil, newProblem(http.StatusBadRequest, codeMalformedJSON, "The request body is not valid JSON.")
		}
		return nil, newProblem(http.StatusBadRequest, codeMalformedJSON, "The request body must be a JSON object.")
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(data, &members); err != nil {
		return nil, newProblem(http.StatusBadRequest, codeMalformedJSON, jsonErrorDetail(err))
	}
	errs, unknown := []fieldError{}, []fieldError{}
	return &object{members: members, used: map[string]bool{}, errs: &errs, unknown: &unknown}, nil
}

// jsonErrorDetail describes a syntax error with its byte offset, without echoing the body.
func jsonErrorDetail(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Sprintf("The request body is not valid JSON (at byte %d).", se.Offset)
	}
	return "The request body is not valid JSON."
}

func (o *object) name(member string) string { return o.prefix + member }

func (o *object) typeError(member, msg string) {
	*o.errs = append(*o.errs, fieldError{Field: o.name(member), Message: msg})
}

// get marks member as known and returns its raw value; null reports a JSON null.
func (o *object) get(member string) (raw json.RawMessage, present, null bool) {
	o.used[member] = true
	raw, present = o.members[member]
	if !present {
		return nil, false, false
	}
	return raw, true, bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// jsonKind names the JSON type of raw for error messages.
func jsonKind(raw json.RawMessage) string {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 {
		return "nothing"
	}
	switch t[0] {
	case '"':
		return "a string"
	case '{':
		return "an object"
	case '[':
		return "an array"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	default:
		return "a number"
	}
}

// decodeString decodes raw as a JSON string.
func (o *object) decodeString(member string, raw json.RawMessage, what string) (string, bool) {
	var s string
	if jsonKind(raw) != "a string" || json.Unmarshal(raw, &s) != nil {
		o.typeError(member, fmt.Sprintf("must be %s, not %s", what, jsonKind(raw)))
		return "", false
	}
	return s, true
}

// str is a string member where absent and null both mean "not given".
func (o *object) str(member string) string {
	p := o.optStr(member)
	if p == nil {
		return ""
	}
	return *p
}

// optStr is like str but keeps "not given" apart from "".
func (o *object) optStr(member string) *string { return o.optString(member, "a string") }

// decimalWhat is what a type error says a money or rate member must be.
const decimalWhat = `a decimal string such as "12500.00" (money is never a JSON number)`

// decimal is a money or rate member: a JSON string of decimal text. A JSON number is refused
// on purpose, since a float cannot carry money exactly.
func (o *object) decimal(member string) *string { return o.optString(member, decimalWhat) }

// optString is the one reader of optional string members (absent and null: nil), so that
// every kind of string member decodes and reports a wrong type alike; what is the expected
// JSON a type error names.
func (o *object) optString(member, what string) *string {
	raw, present, null := o.get(member)
	if !present || null {
		return nil
	}
	s, ok := o.decodeString(member, raw, what)
	if !ok {
		return nil
	}
	return &s
}

// patchStr is a PATCH member that cannot be cleared: null is refused rather than ignored.
func (o *object) patchStr(member string, decimal bool) *string {
	if _, present, null := o.get(member); present && null {
		o.typeError(member, "cannot be null; omit the field to leave it unchanged")
		return nil
	}
	what := "a string"
	if decimal {
		what = decimalWhat
	}
	return o.optString(member, what)
}

// nullableStr is a PATCH member where null means "clear".
func (o *object) nullableStr(member string) (v *string, null bool) {
	if _, present, isNull := o.get(member); present && isNull {
		return nil, true
	}
	return o.optString(member, "a string or null"), false
}

// decodeInt decodes raw as an integral JSON number that fits an int64.
func (o *object) decodeInt(member string, raw json.RawMessage, what string) (int64, bool) {
	var n int64
	if jsonKind(raw) != "a number" || json.Unmarshal(raw, &n) != nil {
		o.typeError(member, fmt.Sprintf("must be %s, not %s", what, describeNumber(raw)))
		return 0, false
	}
	return n, true
}

func describeNumber(raw json.RawMessage) string {
	if k := jsonKind(raw); k != "a number" {
		return k
	}
	return "a fraction or out-of-range number"
}

// optInt is an integer member; absent and null mean "not given".
func (o *object) optInt(member string) *int {
	n := o.optInt64(member)
	if n == nil {
		return nil
	}
	if *n < -1<<31 || *n > 1<<31-1 {
		o.typeError(member, "is out of range")
		return nil
	}
	v := int(*n)
	return &v
}

// nullableInt is a PATCH integer member where null means "clear".
func (o *object) nullableInt(member string) (v *int, null bool) {
	_, present, isNull := o.get(member)
	if present && isNull {
		return nil, true
	}
	return o.optInt(member), false
}

// optInt64 is a 64-bit integer member; absent and null mean "not given".
func (o *object) optInt64(member string) *int64 {
	raw, present, null := o.get(member)
	if !present || null {
		return nil
	}
	n, ok := o.decodeInt(member, raw, "an integer")
	if !ok {
		return nil
	}
	return &n
}

// array is an array member's raw elements, shared by the list readers so that they tell
// absent and null (ok false, no error) and a non-array (a type error saying it must be an
// array of what) apart alike.
func (o *object) array(member, what string) (items []json.RawMessage, ok bool) {
	raw, present, null := o.get(member)
	if !present || null {
		return nil, false
	}
	if jsonKind(raw) != "an array" || json.Unmarshal(raw, &items) != nil {
		o.typeError(member, "must be an array of "+what+", not "+jsonKind(raw))
		return nil, false
	}
	return items, true
}

// stringList is an array of strings; absent and null give nil.
func (o *object) stringList(member string) []string {
	items, ok := o.array(member, "strings")
	if !ok {
		return nil
	}
	out := make([]string, 0, len(items))
	for i, it := range items {
		if s, ok := o.decodeString(fmt.Sprintf("%s[%d]", member, i), it, "a string"); ok {
			out = append(out, s)
		}
	}
	return out
}

// objects is an array of objects; each element is returned as a nested object whose errors are
// reported under "member[i].".
func (o *object) objects(member string) []*object {
	items, ok := o.array(member, "objects")
	if !ok {
		return nil
	}
	out := make([]*object, 0, len(items))
	for i, it := range items {
		name := fmt.Sprintf("%s[%d]", member, i)
		var members map[string]json.RawMessage
		if jsonKind(it) != "an object" || json.Unmarshal(it, &members) != nil {
			o.typeError(name, "must be an object, not "+jsonKind(it))
			continue
		}
		out = append(out, &object{
			prefix: o.name(name) + ".", members: members, used: map[string]bool{},
			errs: o.errs, unknown: o.unknown,
		})
	}
	return out
}

// done records the members nobody asked for as unknown. Call it once per object after all
// accessors ran.
func (o *object) done() {
	var names []string
	for k := range o.members {
		if !o.used[k] {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	for _, k := range names {
		*o.unknown = append(*o.unknown, fieldError{Field: o.name(k), Message: "is not a known field"})
	}
}

// problem returns the 400 for unknown or mistyped members, or nil. Call done first.
func (o *object) problem() *problem {
	unknown, errs := *o.unknown, *o.errs
	switch {
	case len(unknown) > 0:
		names := make([]string, len(unknown))
		for i, u := range unknown {
			names[i] = u.Field
		}
		all := append(slices.Clone(unknown), errs...)
		return newProblem(http.StatusBadRequest, codeUnknownField,
			"The body has unknown fields: "+strings.Join(names, ", ")+".", all...)
	case len(errs) > 0:
		names := make([]string, len(errs))
		for i, e := range errs {
			names[i] = e.Field
		}
		return newProblem(http.StatusBadRequest, codeWrongType,
			"Fields have the wrong JSON type: "+strings.Join(names, ", ")+".", errs...)
	}
	return nil
}
