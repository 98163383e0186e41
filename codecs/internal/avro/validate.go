package avro

import (
	"fmt"
	"math"
)

// maxSkipDepth bounds the nesting the validator follows (only recursive schemas can nest
// deeper than their text).
const maxSkipDepth = 64

// skipValue walks one value of schema n, checking every length, count and index.
func skipValue(d *Decoder, n *Node, depth int) {
	if d.err != nil {
		return
	}
	if depth > maxSkipDepth {
		d.Fail(fmt.Errorf("%w: nested deeper than %d", ErrMalformed, maxSkipDepth))
		return
	}
	switch n.Kind {
	case Null:
	case Boolean:
		d.Bool()
	case Int:
		d.Int()
	case Long:
		d.Long()
	case Float:
		d.Skip(4)
	case Double:
		d.Skip(8)
	case Bytes, String:
		d.Skip(d.Length())
	case Fixed:
		d.Skip(n.Size)
	case Enum:
		d.Index(len(n.Symbols), "enum")
	case Record:
		for _, f := range n.Fields {
			skipValue(d, f.Type, depth+1)
		}
	case Array:
		min := MinEncodedSize(n.Items)
		for c := d.Block(min); c > 0 && d.err == nil; c = d.Block(min) {
			for i := 0; i < c && d.err == nil; i++ {
				skipValue(d, n.Items, depth+1)
			}
		}
	case Map:
		min := 1 + MinEncodedSize(n.Items)
		for c := d.Block(min); c > 0 && d.err == nil; c = d.Block(min) {
			for i := 0; i < c && d.err == nil; i++ {
				d.Skip(d.Length())
				skipValue(d, n.Items, depth+1)
			}
		}
	case Union:
		i := d.Index(len(n.Branches), "union")
		if d.err == nil {
			skipValue(d, n.Branches[i], depth+1)
		}
	}
}

// MinEncodedSize is the least number of bytes a value of schema n takes, used to bound array
// block counts by the bytes left. It is at least 1 for every item type of codecs' schemas; for
// a zero-size item type (null, an empty record) Decoder.Block still demands one byte per
// item, so such arrays are limited to as many items as bytes remain.
func MinEncodedSize(n *Node) int { return minEncodedSize(n, map[*Node]bool{}) }

func minEncodedSize(n *Node, visiting map[*Node]bool) int {
	switch n.Kind {
	case Null:
		return 0
	case Float:
		return 4
	case Double:
		return 8
	case Fixed:
		return n.Size
	case Record:
		if visiting[n] {
			return 0
		}
		visiting[n] = true
		sum := 0
		for _, f := range n.Fields {
			sum += minEncodedSize(f.Type, visiting)
		}
		delete(visiting, n)
		return sum
	case Union:
		least := math.MaxInt
		for _, b := range n.Branches {
			least = min(least, minEncodedSize(b, visiting))
		}
		if least == math.MaxInt {
			least = 0
		}
		return 1 + least
	default: // boolean, int, long, bytes, string, enum, array, map: at least one byte
		return 1
	}
}
