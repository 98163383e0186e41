package query

// Bearer-token access control.
//
// Every token has one role; admin implies write implies read. When Config.Tokens holds at
// least one token, every request except GET /healthz and /readyz (the probes) must carry
// `Authorization: Bearer <token>`, and the role a request needs follows from the route it
// matches:
//
//	GET (and HEAD) anywhere, including /metrics              read
//	POST, PATCH (the opportunity commands)                    write
//	any other method, and any write under /pipelines or
//	/fx-rates (PUT /pipelines/{id}, PUT /fx-rates/{currency}) admin
//	a request that matches no route (answered 404/405)        read (any valid token)
//
// The rule is by method and resource rather than a list of routes, so a route added later is
// protected from the start (a new write needs at least write, a new configuration write admin)
// instead of being open until someone remembers to list it.
//
// A missing header, another scheme, a malformed header and an unknown token are all 401 with
// `WWW-Authenticate: Bearer realm="crm-pipeline"` (plus `error="invalid_token"` when a bearer
// token was sent); a valid token with too small a role is 403 with error="insufficient_scope".
// Both are problem+json like every other error. Tokens are accepted only in the Authorization
// header, never in the query string (which ends up in proxies' logs).
//
// With authentication on, the actor of every command is the name of the token that sent it:
// X-Actor is ignored, so a caller cannot write the audit trail under someone else's name. The
// name is the token's configured name, else "token-" and the first 8 hex digits of the
// token's SHA-256 digest. With authentication off, X-Actor works as before.
//
// Secrets: only SHA-256 digests of the tokens are kept, lookups compare digests in constant
// time, the Authorization header is removed from the request before the handlers see it, and
// no log line or error message carries a token.

import (
	"bufio"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
)

// Role is what a bearer token may do. Each role includes the ones below it.
type Role string

// The roles, weakest first.
const (
	RoleRead  Role = "read"  // every GET, including /metrics
	RoleWrite Role = "write" // read, plus the opportunity commands (POST, PATCH)
	RoleAdmin Role = "admin" // write, plus configuration: PUT /pipelines/{id}, PUT /fx-rates/{currency}
)

// rank orders the roles; an unknown role ranks 0 and is allowed nothing.
func (r Role) rank() int {
	switch r {
	case RoleRead:
		return 1
	case RoleWrite:
		return 2
	case RoleAdmin:
		return 3
	}
	return 0
}

// allows reports whether a token with role r may do what needs role need.
func (r Role) allows(need Role) bool { return r.rank() > 0 && r.rank() >= need.rank() }

// Token syntax limits.
const (
	minTokenLen = 16   // short tokens can be guessed online
	maxTokenLen = 1024 // generous for any generated secret; bounds the work per request
	maxNameLen  = 64   // the name becomes the command actor (Kafka records, logs)
	maxLineLen  = 64 << 10
)

// authRealm is the realm of every WWW-Authenticate challenge.
const authRealm = "crm-pipeline"

// Problem codes of authentication and authorization refusals.
const (
	codeUnauthorized = "unauthorized"
	codeForbidden    = "forbidden"
)

// Tokens is an immutable set of bearer tokens, each with a role and a name. It holds only the
// SHA-256 digests of the tokens, never the tokens themselves. The zero value and nil are empty
// sets, which disable authentication. It is safe for concurrent use.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	digest [sha256.Size]byte
	role   Role
	name   string
}

// Len is the number of tokens; 0 (also for nil) means authentication is disabled.
func (t *Tokens) Len() int {
	if t == nil {
		return 0
	}
	return len(t.entries)
}

// String describes the set without its digests or names, so that printing a configuration
// cannot leak anything useful.
func (t *Tokens) String() string { return fmt.Sprintf("query.Tokens{%d tokens}", t.Len()) }

// GoString is String, for %#v.
func (t *Tokens) GoString() string { return t.String() }

// lookup finds the entry of a presented token. Every entry is compared, in constant time, so
// the time taken tells nothing about which digest or how much of it matched.
func (t *Tokens) lookup(token string) (tokenEntry, bool) {
	if t.Len() == 0 {
		return tokenEntry{}, false
	}
	d := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.entries {
		eq := subtle.ConstantTimeCompare(d[:], t.entries[i].digest[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return tokenEntry{}, false
	}
	return t.entries[found], true
}

// tokenBuilder collects entries and checks them the same way for both input forms.
type tokenBuilder struct {
	t     Tokens
	where map[[sha256.Size]byte]string // digest -> where it was defined, to report duplicates
}

// add validates one entry; where ("line 3", "entry 2") prefixes every error. No error message
// contains the token, and a role is only quoted when it is too short to be a token.
func (b *tokenBuilder) add(where, role, token, name string) error {
	r := Role(role)
	if r.rank() == 0 {
		if len(role) < minTokenLen && printableASCII(role) {
			return fmt.Errorf("%s: unknown role %q (want read, write or admin)", where, role)
		}
		return fmt.Errorf("%s: unknown role (value not shown: it may be a token; want read, write or admin first)", where)
	}
	if err := checkToken(token); err != nil {
		return fmt.Errorf("%s: %w", where, err)
	}
	d := sha256.Sum256([]byte(token))
	if name == "" {
		name = "token-" + hex.EncodeToString(d[:4])
	} else if !validTokenName(name) {
		return fmt.Errorf("%s: name must be 1..%d characters among letters, digits and -._@+/", where, maxNameLen)
	}
	if prev, dup := b.where[d]; dup {
		return fmt.Errorf("%s: the same token as %s", where, prev)
	}
	if b.where == nil {
		b.where = map[[sha256.Size]byte]string{}
	}
	b.where[d] = where
	b.t.entries = append(b.t.entries, tokenEntry{digest: d, role: r, name: name})
	return nil
}

// checkToken enforces the length bounds and RFC 6750's b64token syntax (letters, digits,
// -._~+/ then optional trailing '='), so that every configured token can actually be sent in
// an Authorization header.
func checkToken(tok string) error {
	if len(tok) < minTokenLen || len(tok) > maxTokenLen {
		return fmt.Errorf("token must be %d..%d characters", minTokenLen, maxTokenLen)
	}
	if !validB64Token(tok) {
		return errors.New("token may only contain letters, digits and -._~+/ (and trailing '=')")
	}
	return nil
}

func validB64Token(s string) bool { return alnumOr(strings.TrimRight(s, "="), "-._~+/") }

func validTokenName(s string) bool { return len(s) <= maxNameLen && alnumOr(s, "-._@+/") }

// LoadTokens reads a token file: one `<role> <token> [name]` a line, fields separated by
// spaces or tabs. Blank lines and lines starting with '#' are ignored, as is anything from a
// field starting with '#' to the end of its line. role is read, write or admin; a token is
// 16..1024 characters of RFC 6750 b64token syntax; a name (the actor of the token's commands)
// is up to 64 letters, digits and -._@+/. The same token twice is an error. Errors name the
// line and never contain a token. A file without tokens yields an empty set (authentication
// disabled): callers that require authentication check Len.
func LoadTokens(r io.Reader) (*Tokens, error) {
	var b tokenBuilder
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLineLen)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if n == 1 {
			line = strings.TrimPrefix(line, "\uFEFF")
		}
		fields := strings.Fields(line)
		for i, f := range fields {
			if strings.HasPrefix(f, "#") {
				fields = fields[:i]
				break
			}
		}
		if len(fields) == 0 {
			continue
		}
		where := fmt.Sprintf("tokens line %d", n)
		var name string
		switch len(fields) {
		case 2:
		case 3:
			name = fields[2]
		default:
			return nil, fmt.Errorf("%s: want `<role> <token> [name]`, got %d fields", where, len(fields))
		}
		if err := b.add(where, fields[0], fields[1], name); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("tokens line %d: longer than %d bytes", n+1, maxLineLen)
		}
		return nil, fmt.Errorf("read tokens: %w", err)
	}
	return &b.t, nil
}

// ParseTokenList parses the environment-variable form of a token set:
// `role:token[:name],role:token[:name],...`, with the same rules as LoadTokens. Spaces around
// an entry and empty entries are ignored, so "" yields an empty set (authentication disabled).
// Errors name the entry by its 1-based position and never contain a token.
func ParseTokenList(s string) (*Tokens, error) {
	var b tokenBuilder
	for i, entry := range strings.Split(s, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		where := fmt.Sprintf("token list entry %d", i+1)
		parts := strings.Split(entry, ":")
		var name string
		switch len(parts) {
		case 2:
		case 3:
			name = parts[2]
			if name == "" {
				return nil, fmt.Errorf("%s: name must be 1..%d characters (omit the ':' for the default name)", where, maxNameLen)
			}
		default:
			return nil, fmt.Errorf("%s: want role:token[:name], got %d ':'-separated parts", where, len(parts))
		}
		if err := b.add(where, parts[0], parts[1], name); err != nil {
			return nil, err
		}
	}
	return &b.t, nil
}

// principal is the authenticated caller of a request.
type principal struct {
	name string
	role Role
}

type principalKey struct{}

// principalFrom returns the caller the authenticate middleware admitted, if authentication is on.
func principalFrom(ctx context.Context) (principal, bool) {
	p, ok := ctx.Value(principalKey{}).(principal)
	return p, ok
}

// openPaths need no token: liveness and readiness probes rarely carry credentials.
var openPaths = map[string]bool{"/healthz": true, "/readyz": true}

// configPrefixes are the configuration resources: any write to them needs admin.
var configPrefixes = []string{BasePath + "/pipelines", BasePath + "/fx-rates"}

// requiredRole is the role a request for the matched route pattern needs; "" means no route
// matched, and a 404/405 only needs a valid token.
func requiredRole(method, pattern string) Role {
	if pattern == "" {
		return RoleRead
	}
	if method == http.MethodGet || method == http.MethodHead {
		return RoleRead
	}
	for _, p := range configPrefixes {
		if pattern == p || strings.HasPrefix(pattern, p+"/") {
			return RoleAdmin
		}
	}
	if method == http.MethodPost || method == http.MethodPatch {
		return RoleWrite
	}
	return RoleAdmin
}

// routingPath is the path chi routes on at the root router.
func routingPath(r *http.Request) string {
	if r.URL.RawPath != "" {
		return r.URL.RawPath
	}
	return r.URL.Path
}

// bearerToken extracts the token of `Authorization: Bearer <token>`. given reports whether
// the request tried bearer authentication at all (for the challenge's error code).
func bearerToken(h http.Header) (token string, given, ok bool) {
	vals := h.Values("Authorization")
	if len(vals) == 0 {
		return "", false, false
	}
	if len(vals) > 1 {
		return "", true, false
	}
	scheme, rest, _ := strings.Cut(vals[0], " ")
	if !strings.EqualFold(scheme, "Bearer") {
		// Another scheme (Basic, ...): no bearer credentials were presented (RFC 6750 §3.1).
		return "", false, false
	}
	token = strings.TrimLeft(rest, " ")
	if token == "" || len(token) > maxTokenLen || !validB64Token(token) {
		return "", true, false
	}
	return token, true, true
}

// authenticate enforces Config.Tokens; with no tokens it is a no-op. It runs before the
// routes (so it sees no chi route yet) and looks the route up itself to know the role needed.
func (s *server) authenticate(next http.Handler) http.Handler {
	if s.tokens.Len() == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := routingPath(r)
		if openPaths[path] {
			next.ServeHTTP(w, r)
			return
		}
		pattern := s.mux.Find(chi.NewRouteContext(), r.Method, path)
		need := requiredRole(r.Method, pattern)

		token, given, ok := bearerToken(r.Header)
		var entry tokenEntry
		if ok {
			entry, ok = s.tokens.lookup(token)
		}
		if !ok {
			s.refuse(w, r, pattern, unauthorizedProblem(given), "reason", refusalReason(r, given))
			return
		}
		if !entry.role.allows(need) {
			s.refuse(w, r, pattern, forbiddenProblem(entry.role, need),
				"token_name", entry.name, "role", string(entry.role), "need", string(need))
			return
		}

		// The handlers see neither the secret nor a client-chosen actor: the command actor
		// (parseMeta reads X-Actor) is the token's name.
		r2 := r.Clone(context.WithValue(r.Context(), principalKey{}, principal{name: entry.name, role: entry.role}))
		r2.Header.Del("Authorization")
		r2.Header.Set("X-Actor", entry.name)
		next.ServeHTTP(w, r2)
	})
}

func refusalReason(r *http.Request, given bool) string {
	switch {
	case given:
		return "invalid_token"
	case r.Header.Get("Authorization") != "":
		return "other_scheme"
	default:
		return "missing"
	}
}

// refuse answers a refused request and logs why, without any credential. The matched route
// pattern is recorded for the access log and metrics, which would otherwise call it unmatched.
func (s *server) refuse(w http.ResponseWriter, r *http.Request, pattern string, p *problem, attrs ...any) {
	if rctx := chi.RouteContext(r.Context()); rctx != nil && pattern != "" {
		rctx.RoutePatterns = append(rctx.RoutePatterns, pattern)
	}
	args := append([]any{"request_id", requestIDFrom(r.Context()), "status", p.Status,
		"method", r.Method, "path", r.URL.Path}, attrs...)
	s.log.InfoContext(r.Context(), "http request refused", args...)
	writeProblem(w, r, p)
}

func unauthorizedProblem(tokenGiven bool) *problem {
	challenge := `Bearer realm="` + authRealm + `"`
	detail := "This endpoint requires an `Authorization: Bearer <token>` header."
	if tokenGiven {
		challenge += `, error="invalid_token"`
		detail = "The bearer token is malformed, unknown or revoked."
	}
	p := newProblem(http.StatusUnauthorized, codeUnauthorized, detail).withHeader("WWW-Authenticate", challenge)
	p.Title = "Authentication required"
	return p
}

func forbiddenProblem(have, need Role) *problem {
	p := newProblem(http.StatusForbidden, codeForbidden,
		fmt.Sprintf("This request needs the %s role; the token has the %s role.", need, have)).
		withHeader("WWW-Authenticate", fmt.Sprintf(`Bearer realm="%s", error="insufficient_scope", scope="%s"`, authRealm, need))
	p.Title = "Insufficient role"
	return p
}
