package processors

import (
	"strings"
	"testing"

	"github.com/lovoo/goka"

	"github.com/crm-pipeline/crm-pipeline/topics"
)

// TestFitDLQ: whatever the size of the input's key, value and headers, the DLQ record fits the
// producer's limit, keeps the headers that name its cause, and says what it cut.
func TestFitDLQ(t *testing.T) {
	cause := func() goka.Headers {
		return goka.Headers{topics.HeaderDLQMessage: []byte("decode: bad"), topics.HeaderDLQOffset: []byte("7"), topics.HeaderDLQTopic: []byte("t")}
	}
	cases := []struct {
		name    string
		key     string
		value   int
		extra   int // bytes of one header of the input's own
		cutVal  bool
		dropHdr bool
		cutKey  bool
	}{
		{"small", "k", 100, 10, false, false, false},
		{"at the limit", "k", topics.MaxMessageBytes, 0, true, false, false},
		{"topic-sized", "k", topics.TopicMaxMessageBytes, 0, true, false, false},
		{"huge headers", "k", 1000, topics.MaxMessageBytes, false, true, false},
		{"huge key", strings.Repeat("k", topics.MaxMessageBytes), 10, 0, false, false, true},
	}
	for _, c := range cases {
		hdr := cause()
		if c.extra > 0 {
			hdr["origin"] = make([]byte, c.extra)
		}
		key, value, out := fitDLQ(c.key, make([]byte, c.value), hdr)
		if !topics.FitsRecord(key, value, out) {
			t.Fatalf("%s: DLQ record of %d bytes does not fit", c.name, topics.RecordSize(key, value, out))
		}
		if string(out[topics.HeaderDLQMessage]) != "decode: bad" || string(out[topics.HeaderDLQOffset]) != "7" {
			t.Fatalf("%s: cause headers lost: %v", c.name, out)
		}
		if got := out[topics.HeaderDLQTruncated] != nil; got != c.cutVal {
			t.Fatalf("%s: truncated marker %v, want %v", c.name, got, c.cutVal)
		}
		if got := out[topics.HeaderDLQHeadersDropped] != nil; got != c.dropHdr {
			t.Fatalf("%s: headers-dropped marker %v, want %v", c.name, got, c.dropHdr)
		}
		if got := out[topics.HeaderDLQKeyTruncated] != nil; got != c.cutKey {
			t.Fatalf("%s: key-truncated marker %v, want %v", c.name, got, c.cutKey)
		}
		if !c.cutVal && len(value) != c.value {
			t.Fatalf("%s: value cut from %d to %d without need", c.name, c.value, len(value))
		}
	}
}
