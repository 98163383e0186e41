package analytics

import "github.com/crm-pipeline/crm-pipeline/domain"

// Scope is what a bucket key says about the figures it holds: the pipeline, the owner and the
// day. It exists for readers outside the read model, such as the live change stream, which
// tells a dashboard which figures a change touched without knowing the key layout.
type Scope struct {
	PipelineID string
	OwnerID    string
	Day        domain.Date
}

// ScopeOf reads a bucket key; ok is false for anything that is not a bucket key of this
// package.
func ScopeOf(key string) (Scope, bool) {
	pk, ok := parseKey(key)
	if !ok {
		return Scope{}, false
	}
	return Scope{PipelineID: pk.pipeline, OwnerID: pk.owner, Day: pk.day}, true
}
