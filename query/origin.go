package query

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// Problem codes of the browser-facing checks.
const (
	codeHostNotAllowed       = "host_not_allowed"
	codeCrossSiteRefused     = "cross_site_refused"
	codeUnsupportedMediaType = "unsupported_media_type"
)

// HostPolicy says which Host headers the service answers. A service without tokens is open to
// anyone who can reach it, and a browser is such a one: a page on any site can make the
// user's browser send requests to 127.0.0.1, and DNS rebinding makes them same-origin for the
// browser. Refusing every Host that is not a name of this machine closes the second door, the
// cross-site checks the first.
type HostPolicy struct {
	// Allowed are host names (without port, case-insensitive) accepted besides the loopback
	// names (localhost, *.localhost, 127.0.0.0/8, ::1); "*" accepts any host.
	Allowed []string
	// Any turns the check off. The service sets it when tokens are configured and no
	// --allowed-hosts are given: a rebinding page cannot present a token it does not have.
	Any bool
}

// allows reports whether hostport (a Host header) may be answered.
func (p HostPolicy) allows(hostport string) bool {
	if p.Any {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if isLoopbackName(host) {
		return true
	}
	for _, a := range p.Allowed {
		if a == "*" || strings.EqualFold(a, host) {
			return true
		}
	}
	return false
}

// isLoopbackName reports whether host (no port, lower case) names this machine's loopback.
func isLoopbackName(host string) bool {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkHost refuses requests whose Host the policy does not allow (403 host_not_allowed). The
// probes stay open: an orchestrator probes by IP address.
func (s *server) checkHost(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !openPaths[routingPath(r)] && !s.hosts.allows(r.Host) {
			writeProblem(w, r, newProblem(http.StatusForbidden, codeHostNotAllowed,
				"This service does not answer for this host name; it answers for loopback names and the names given in --allowed-hosts."))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// isWrite reports whether a method can change state.
func isWrite(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// refuseCrossSite refuses a write a browser sent on behalf of another site: Fetch metadata
// (Sec-Fetch-Site other than same-origin or none; same-site is refused too, since another port
// of localhost is the same site) or an Origin that is not this service's own. Clients other
// than browsers send neither header and pass.
func (s *server) refuseCrossSite(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWrite(r.Method) {
			if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
				writeProblem(w, r, crossSiteProblem("Sec-Fetch-Site is "+site))
				return
			}
			if origin := r.Header.Get("Origin"); origin != "" && !s.sameOrigin(origin, r) {
				writeProblem(w, r, crossSiteProblem("Origin "+origin+" is not this service"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// sameOrigin reports whether a request's Origin header names the host it was sent to (or one
// of the allowed host names, for a proxy that rewrites Host).
func (s *server) sameOrigin(origin string, r *http.Request) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return false // "null" (sandboxed frames, file: pages) and garbage
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, a := range s.hosts.Allowed {
		if a != "*" && strings.EqualFold(a, u.Hostname()) {
			return true
		}
	}
	return false
}

func crossSiteProblem(why string) *problem {
	return newProblem(http.StatusForbidden, codeCrossSiteRefused,
		"Cross-site writes are refused: "+why+".")
}

// requireJSON refuses writes that do not declare a JSON body. An HTML form or a no-cors fetch
// can only send text/plain, form or multipart bodies without a CORS preflight, so insisting on
// application/json also stops the writes a hostile page could make through a browser.
func (s *server) requireJSON(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isWrite(r.Method) {
			ct := r.Header.Get("Content-Type")
			mt, _, err := mime.ParseMediaType(ct)
			if err != nil || mt != "application/json" {
				got := "no Content-Type"
				if ct != "" {
					got = "Content-Type " + ct
				}
				writeProblem(w, r, newProblem(http.StatusUnsupportedMediaType, codeUnsupportedMediaType,
					"Writes take a JSON body sent with Content-Type: application/json (even an empty one); this request has "+got+".",
					fieldError{Field: "Content-Type", Message: "must be application/json"}).
					withHeader("Accept-Post", "application/json"))
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}
