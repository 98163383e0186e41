package processors

import (
	"sync"
	"testing"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

func encodePipeline(t *testing.T, p domain.Pipeline) []byte {
	t.Helper()
	b, err := codecs.EncodePipeline(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPipelineCacheDecodesOncePerValue(t *testing.T) {
	c := newPipelineCache()
	good := domain.DefaultPipeline()
	raw := encodePipeline(t, good)

	v1, err := c.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	v2, _ := c.Decode(append([]byte(nil), raw...)) // equal bytes, another slice
	p1, p2 := v1.(*domain.Pipeline), v2.(*domain.Pipeline)
	if p1 != p2 {
		t.Fatalf("equal values decoded twice: %p %p", p1, p2)
	}
	if p1.ID != good.ID || len(p1.Stages) != len(good.Stages) {
		t.Fatalf("decoded %+v", p1)
	}
	if err := c.check(p1); err != nil {
		t.Fatalf("check of the default pipeline: %v", err)
	}

	changed := good
	changed.Name = "Renamed"
	p3, _ := c.Decode(encodePipeline(t, changed))
	if p3.(*domain.Pipeline) == p1 || p3.(*domain.Pipeline).Name != "Renamed" {
		t.Fatalf("a changed configuration came back as the old one")
	}
}

func TestPipelineCacheCheckEqualsValidate(t *testing.T) {
	c := newPipelineCache()
	broken := domain.DefaultPipeline()
	broken.ID = "broken"
	broken.Stages = broken.Stages[:1]
	v, _ := c.Decode(encodePipeline(t, broken))
	p := v.(*domain.Pipeline)
	want := p.Validate()
	if want == nil {
		t.Fatal("the broken pipeline validates; the test needs one that does not")
	}
	if got := c.check(p); got == nil || got.Error() != want.Error() {
		t.Fatalf("check %v, Validate %v", got, want)
	}
	// A configuration the cache never handed out is validated afresh.
	other := domain.DefaultPipeline()
	other.Stages = nil
	if c.check(&other) == nil {
		t.Fatal("check accepted a pipeline without stages")
	}
}

func TestPipelineCacheMalformedAndBounded(t *testing.T) {
	c := newPipelineCache()
	if v, err := c.Decode([]byte("not avro")); v != nil || err != nil {
		t.Fatalf("malformed: %v, %v; want absent", v, err)
	}
	if v, err := c.Decode(nil); v != nil || err != nil {
		t.Fatalf("empty: %v, %v; want absent", v, err)
	}
	base := domain.DefaultPipeline()
	for i := 0; i < maxCachedPipelines+10; i++ {
		p := base
		p.Name = "P" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		if _, err := c.Decode(encodePipeline(t, p)); err != nil {
			t.Fatal(err)
		}
		if len(c.byRaw) > maxCachedPipelines || len(c.valid) > maxCachedPipelines {
			t.Fatalf("cache holds %d/%d entries, bound %d", len(c.byRaw), len(c.valid), maxCachedPipelines)
		}
	}
}

func TestPipelineCacheConcurrent(t *testing.T) {
	c := newPipelineCache()
	raws := [][]byte{encodePipeline(t, domain.DefaultPipeline())}
	alt := domain.DefaultPipeline()
	alt.ID = "alt"
	raws = append(raws, encodePipeline(t, alt))
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				v, err := c.Decode(raws[(g+i)%2])
				if err != nil || v == nil {
					t.Errorf("decode: %v %v", v, err)
					return
				}
				if err := c.check(v.(*domain.Pipeline)); err != nil {
					t.Errorf("check: %v", err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}
