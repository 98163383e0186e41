package avro

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Kind is the Avro type of a schema node.
type Kind uint8

// The Avro types.
const (
	Null Kind = iota
	Boolean
	Int
	Long
	Float
	Double
	Bytes
	String
	Record
	Enum
	Fixed
	Array
	Map
	Union
)

var primitiveKinds = map[string]Kind{
	"null": Null, "boolean": Boolean, "int": Int, "long": Long,
	"float": Float, "double": Double, "bytes": Bytes, "string": String,
}

var kindNames = [...]string{
	Null: "null", Boolean: "boolean", Int: "int", Long: "long", Float: "float",
	Double: "double", Bytes: "bytes", String: "string", Record: "record", Enum: "enum",
	Fixed: "fixed", Array: "array", Map: "map", Union: "union",
}

func (k Kind) String() string { return kindNames[k] }

// Node is a parsed Avro schema. Named types are shared: every reference to a name points at
// the node of its definition, so recursive schemas are graphs.
type Node struct {
	Kind     Kind
	Name     string // full name of a record, enum or fixed
	Logical  string // logicalType, kept for tools; irrelevant to the canonical form
	Fields   []Field
	Symbols  []string
	Size     int
	Items    *Node // array items or map values
	Branches []*Node
}

// Field is one field of a record, with its default value as parsed JSON (json.Number for
// numbers) when it has one.
type Field struct {
	Name       string
	Type       *Node
	Default    any
	HasDefault bool
}

// Named reports whether the node is a record, enum or fixed.
func (n *Node) Named() bool { return n.Kind == Record || n.Kind == Enum || n.Kind == Fixed }

// UnionKey identifies a union branch: the full name of a named type, else its type name. A
// union may not hold two branches with the same key.
func (n *Node) UnionKey() string {
	if n.Named() {
		return n.Name
	}
	return n.Kind.String()
}

// Field returns the record field called name.
func (n *Node) Field(name string) (Field, bool) {
	for _, f := range n.Fields {
		if f.Name == name {
			return f, true
		}
	}
	return Field{}, false
}

// errSchema marks a schema text that is not valid Avro.
var errSchema = errors.New("invalid Avro schema")

// Parse parses Avro schema JSON into a node graph, resolving names the way the specification
// says (and Java does): a dotted name is a full name; otherwise the namespace attribute, else
// the enclosing named type's namespace, qualifies it; a reference that does not resolve in
// the enclosing namespace is looked up in the null namespace.
func Parse(schemaJSON string) (*Node, error) {
	dec := json.NewDecoder(strings.NewReader(schemaJSON))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("%w: %v", errSchema, err)
	}
	if _, err := dec.Token(); err == nil {
		return nil, fmt.Errorf("%w: trailing data after the schema", errSchema)
	}
	p := &parser{names: make(map[string]*Node)}
	n, err := p.parse(v, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errSchema, err)
	}
	return n, nil
}

type parser struct {
	names map[string]*Node
}

func (p *parser) parse(v any, ns string) (*Node, error) {
	switch s := v.(type) {
	case string:
		return p.reference(s, ns)
	case []any:
		return p.union(s, ns)
	case map[string]any:
		return p.object(s, ns)
	default:
		return nil, fmt.Errorf("a schema is a string, an array or an object, not %T", v)
	}
}

// reference resolves a type name: a primitive or a previously defined named type.
func (p *parser) reference(s, ns string) (*Node, error) {
	if k, ok := primitiveKinds[s]; ok {
		return &Node{Kind: k}, nil
	}
	if !strings.Contains(s, ".") && ns != "" {
		if n, ok := p.names[ns+"."+s]; ok {
			return n, nil
		}
	}
	if n, ok := p.names[s]; ok {
		return n, nil
	}
	return nil, fmt.Errorf("undefined type name %q", s)
}

func (p *parser) union(branches []any, ns string) (*Node, error) {
	n := &Node{Kind: Union}
	keys := make(map[string]bool, len(branches))
	for i, b := range branches {
		bn, err := p.parse(b, ns)
		if err != nil {
			return nil, fmt.Errorf("union branch %d: %w", i, err)
		}
		if bn.Kind == Union {
			return nil, fmt.Errorf("union branch %d is itself a union", i)
		}
		if k := bn.UnionKey(); keys[k] {
			return nil, fmt.Errorf("union holds %q twice", k)
		} else {
			keys[k] = true
		}
		n.Branches = append(n.Branches, bn)
	}
	return n, nil
}

func (p *parser) object(o map[string]any, ns string) (*Node, error) {
	t, ok := o["type"]
	if !ok {
		return nil, errors.New(`schema object without "type"`)
	}
	ts, ok := t.(string)
	if !ok {
		// {"type": {...}} or {"type": [...]}: the attribute holds the schema itself.
		return p.parse(t, ns)
	}
	logical, _ := o["logicalType"].(string)
	if k, ok := primitiveKinds[ts]; ok {
		return &Node{Kind: k, Logical: logical}, nil
	}
	switch ts {
	case "record", "error", "enum", "fixed":
		return p.named(o, ts, ns, logical)
	case "array", "map":
		attr := "items"
		kind := Array
		if ts == "map" {
			attr, kind = "values", Map
		}
		sub, ok := o[attr]
		if !ok {
			return nil, fmt.Errorf("%s without %q", ts, attr)
		}
		in, err := p.parse(sub, ns)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", ts, attr, err)
		}
		return &Node{Kind: kind, Items: in, Logical: logical}, nil
	default:
		// {"type":"SomeDefinedName"}
		return p.reference(ts, ns)
	}
}

func (p *parser) named(o map[string]any, ts, ns, logical string) (*Node, error) {
	name, ok := o["name"].(string)
	if !ok || name == "" {
		return nil, fmt.Errorf("%s without a name", ts)
	}
	var full, space string
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		full, space = name, name[:i]
	} else {
		space = ns
		if nsv, ok := o["namespace"]; ok && nsv != nil {
			s, ok := nsv.(string)
			if !ok {
				return nil, fmt.Errorf("%s %q: namespace is not a string", ts, name)
			}
			space = s
		}
		full = name
		if space != "" {
			full = space + "." + name
		}
	}
	if err := validFullName(full); err != nil {
		return nil, err
	}
	if _, ok := primitiveKinds[full]; ok {
		return nil, fmt.Errorf("%q is a primitive type and cannot be redefined", full)
	}
	if _, dup := p.names[full]; dup {
		return nil, fmt.Errorf("%q is defined twice", full)
	}
	n := &Node{Name: full, Logical: logical}
	p.names[full] = n // defined before its fields: a record may refer to itself
	switch ts {
	case "record", "error":
		n.Kind = Record
		fields, ok := o["fields"].([]any)
		if !ok {
			return nil, fmt.Errorf("record %q without a fields array", full)
		}
		seen := make(map[string]bool, len(fields))
		for i, fv := range fields {
			fo, ok := fv.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("record %q field %d is not an object", full, i)
			}
			fname, _ := fo["name"].(string)
			if !validName(fname) {
				return nil, fmt.Errorf("record %q field %d has an invalid name %q", full, i, fname)
			}
			if seen[fname] {
				return nil, fmt.Errorf("record %q has two fields %q", full, fname)
			}
			seen[fname] = true
			ft, ok := fo["type"]
			if !ok {
				return nil, fmt.Errorf("record %q field %q without a type", full, fname)
			}
			fn, err := p.parse(ft, space)
			if err != nil {
				return nil, fmt.Errorf("record %q field %q: %w", full, fname, err)
			}
			def, hasDef := fo["default"]
			n.Fields = append(n.Fields, Field{Name: fname, Type: fn, Default: def, HasDefault: hasDef})
		}
	case "enum":
		n.Kind = Enum
		syms, ok := o["symbols"].([]any)
		if !ok {
			return nil, fmt.Errorf("enum %q without a symbols array", full)
		}
		seen := make(map[string]bool, len(syms))
		for _, sv := range syms {
			s, _ := sv.(string)
			if !validName(s) || seen[s] {
				return nil, fmt.Errorf("enum %q has an invalid or repeated symbol %q", full, s)
			}
			seen[s] = true
			n.Symbols = append(n.Symbols, s)
		}
	case "fixed":
		n.Kind = Fixed
		size, err := parseSize(o["size"])
		if err != nil {
			return nil, fmt.Errorf("fixed %q: %w", full, err)
		}
		n.Size = size
	}
	return n, nil
}

// parseSize reads a fixed size: a JSON integer, or (leniently, as the specification's
// [INTEGERS] rule implies) an integer in a string.
func parseSize(v any) (int, error) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = x.String()
	case string:
		s = x
	default:
		return 0, errors.New("size is not an integer")
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("size %q is not a non-negative integer", s)
	}
	return int(n), nil
}

// validName checks an Avro name: [A-Za-z_][A-Za-z0-9_]*. Names are written unescaped into the
// canonical form, so anything else must be refused.
func validName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_', c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

func validFullName(full string) error {
	for _, part := range strings.Split(full, ".") {
		if !validName(part) {
			return fmt.Errorf("invalid name %q", full)
		}
	}
	return nil
}
