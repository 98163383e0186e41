package processors

import (
	"sync"

	"github.com/crm-pipeline/crm-pipeline/codecs"
	"github.com/crm-pipeline/crm-pipeline/domain"
)

// maxCachedPipelines bounds pipelineCache: a company has a handful of pipelines, and each
// change of one adds an entry; past the bound the cache starts again empty.
const maxCachedPipelines = 256

// pipelineCache is the pipelines lookup table's goka codec. Every command looks its pipeline
// up, and goka decodes the table value on every lookup; profiles showed that decode plus
// Pipeline.Validate (which formats field paths) at about 2.5% of the processor's CPU for a
// configuration that changes a few times a year. The cache decodes each distinct record value
// once, validates it once, and hands out the same *domain.Pipeline for equal values, which
// callers only read. Like lenient, a malformed value reads as absent.
type pipelineCache struct {
	mu    sync.Mutex
	byRaw map[string]*domain.Pipeline
	valid map[*domain.Pipeline]error
}

func newPipelineCache() *pipelineCache {
	return &pipelineCache{byRaw: map[string]*domain.Pipeline{}, valid: map[*domain.Pipeline]error{}}
}

// Encode is the pipelines codec's: the processor never writes the lookup table, but goka's
// Codec interface asks for it.
func (c *pipelineCache) Encode(v any) ([]byte, error) { return codecs.PipelineCodec{}.Encode(v) }

// Decode returns the configuration for b, decoding and validating it only the first time
// these bytes are seen.
func (c *pipelineCache) Decode(b []byte) (any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	c.mu.Lock()
	p, ok := c.byRaw[string(b)]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	v, err := codecs.PipelineCodec{}.Decode(b)
	if err != nil || v == nil {
		return nil, nil
	}
	p = v.(*domain.Pipeline)
	verr := p.Validate()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byRaw) >= maxCachedPipelines {
		clear(c.byRaw)
		clear(c.valid)
	}
	c.byRaw[string(b)] = p
	c.valid[p] = verr
	return p, nil
}

// check is domain.DecideContext.CheckPipeline: the memoized validation of a configuration this
// cache handed out, or a fresh Validate for any other (one dropped by a reset, say).
func (c *pipelineCache) check(p *domain.Pipeline) error {
	c.mu.Lock()
	err, ok := c.valid[p]
	c.mu.Unlock()
	if ok {
		return err
	}
	return p.Validate()
}
