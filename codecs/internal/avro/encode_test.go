package avro

import (
	"bytes"
	"math/rand/v2"
	"testing"
)

// The sort's integer prefix must never contradict bytewise order (short keys, zero bytes,
// bytes above 0x7f, keys sharing their first 8 bytes).
func TestKeyPrefixOrder(t *testing.T) {
	keys := []string{"", "\x00", "a", "a\x00", "a\x00\x00", "ab", "abcdefgh", "abcdefgh\x00", "abcdefghi", "abcdefgg\xff",
		"\xff", "\xff\xff\xff\xff\xff\xff\xff\xff", "\x7f\x80", "é", "東京", "😀", "qualification.count", "qualification.amount"}
	r := rand.New(rand.NewPCG(1, 2))
	for range 600 {
		k := make([]byte, r.IntN(12))
		for i := range k {
			k[i] = "\x00\x01a\x7f\x80\xff"[r.IntN(6)]
		}
		keys = append(keys, string(k))
	}
	for _, x := range keys {
		for _, y := range keys {
			got := compareEntries(longEntry{keyPrefix(x), x, 0}, longEntry{keyPrefix(y), y, 0})
			if want := bytes.Compare([]byte(x), []byte(y)); got != want {
				t.Fatalf("compare(%q, %q) = %d, bytewise %d", x, y, got, want)
			}
		}
	}
}
