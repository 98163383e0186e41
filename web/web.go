package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed assets
var assets embed.FS

// UIPath is where the assets are served; the page is served at "/".
const UIPath = "/ui/"

// versionPlaceholder is replaced in index.html by the assets' version, so that the page
// names /ui/<version>/app.js and every relative import of the modules resolves under the
// same versioned, immutable prefix.
const versionPlaceholder = "__UI_VERSION__"

// ContentSecurityPolicy is sent with every answer of the handler: scripts, styles, images
// and fonts from this origin only, no inline script or style attribute in markup, fetches to
// this origin only (the API and its stream), no framing, no plugins, no form posts.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'none'; " +
	"frame-ancestors 'none'"

// asset is one embedded file, ready to serve.
type asset struct {
	body  []byte
	gz    []byte // gzip of body when that is smaller, else nil
	ctype string
	etag  string
}

// Handler serves the dashboard: GET / is the page, GET /ui/<version>/<file> and
// GET /ui/<file> its assets. Build it with New.
type Handler struct {
	files   map[string]*asset // by path below assets/ui
	index   *asset
	version string
}

// New builds the handler from the embedded assets. It fails only if the embedded tree is
// broken, which a test of this package rules out.
func New() (*Handler, error) {
	h := &Handler{files: map[string]*asset{}}
	sum := sha256.New()
	err := fs.WalkDir(assets, "assets/ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "assets/ui/")
		fmt.Fprintf(sum, "%s\x00%d\x00", name, len(b))
		sum.Write(b)
		h.files[name] = newAsset(name, b)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("web: embedded assets: %w", err)
	}
	h.version = hex.EncodeToString(sum.Sum(nil))[:16]
	page, err := assets.ReadFile("assets/index.html")
	if err != nil {
		return nil, fmt.Errorf("web: embedded page: %w", err)
	}
	h.index = newAsset("index.html", bytes.ReplaceAll(page, []byte(versionPlaceholder), []byte(h.version)))
	return h, nil
}

// Version is the digest that names the current assets (/ui/<version>/...).
func (h *Handler) Version() string { return h.version }

func newAsset(name string, b []byte) *asset {
	ctype := mime.TypeByExtension(path.Ext(name))
	switch path.Ext(name) { // not left to the system's mime tables
	case ".js", ".mjs":
		ctype = "text/javascript; charset=utf-8"
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".html":
		ctype = "text/html; charset=utf-8"
	case ".svg":
		ctype = "image/svg+xml"
	case ".png":
		ctype = "image/png"
	case ".json":
		ctype = "application/json"
	case ".txt", "":
		ctype = "text/plain; charset=utf-8"
	}
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	d := sha256.Sum256(b)
	a := &asset{body: b, ctype: ctype, etag: `"` + hex.EncodeToString(d[:])[:24] + `"`}
	if compressible(ctype) && len(b) > 512 {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		_, _ = zw.Write(b)
		_ = zw.Close()
		if buf.Len() < len(b) {
			a.gz = buf.Bytes()
		}
	}
	return a
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "svg") || strings.Contains(ctype, "json")
}

// Owns reports whether the handler serves this URL path: "/" and everything under /ui/.
func Owns(urlPath string) bool { return urlPath == "/" || strings.HasPrefix(urlPath, UIPath) }

// WithAPI is the service's whole HTTP handler: the dashboard's paths (Owns) to h, every other
// path to api unchanged.
func (h *Handler) WithAPI(api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Owns(r.URL.Path) {
			h.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// ServeHTTP answers GET and HEAD of the page and the assets.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Content-Security-Policy", ContentSecurityPolicy)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
	hd.Set("Cross-Origin-Resource-Policy", "same-origin")
	hd.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		hd.Set("Allow", "GET, HEAD")
		problem(w, http.StatusMethodNotAllowed, "method_not_allowed", "The dashboard's files are read with GET.")
		return
	}
	if r.URL.Path == "/" {
		// The page is small and names the versioned assets: revalidated on every load.
		hd.Set("Cache-Control", "no-cache")
		serve(w, r, h.index)
		return
	}
	name := strings.TrimPrefix(r.URL.Path, UIPath)
	cache := "no-cache"
	if v, rest, ok := strings.Cut(name, "/"); ok && v == h.version {
		name, cache = rest, "public, max-age=31536000, immutable"
	} else if ok && isVersion(v) {
		// A page of an earlier build asks for its assets: answer with today's, revalidated,
		// rather than a 404 that breaks the page mid-upgrade.
		name = rest
	}
	a, found := h.files[name]
	if !found {
		problem(w, http.StatusNotFound, "route_not_found", "No dashboard file at this path.")
		return
	}
	hd.Set("Cache-Control", cache)
	serve(w, r, a)
}

// isVersion reports whether s looks like a version segment (16 hex digits).
func isVersion(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// serve writes a (or 304 when the client holds it), gzipped when the client takes it.
func serve(w http.ResponseWriter, r *http.Request, a *asset) {
	hd := w.Header()
	hd.Set("ETag", a.etag)
	hd.Set("Vary", "Accept-Encoding")
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatches(match, a.etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	hd.Set("Content-Type", a.ctype)
	body := a.body
	if a.gz != nil && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body = a.gz
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("Content-Length", fmt.Sprint(len(body)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(body)
	}
}

func etagMatches(header, etag string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == etag || t == "*" {
			return true
		}
	}
	return false
}

func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		enc, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		q, ok := strings.CutPrefix(strings.ReplaceAll(params, " ", ""), "q=")
		return !ok || strings.Trim(strings.TrimPrefix(q, "0"), ".0") != "" // q=0, q=0.0: refused
	}
	return false
}

// problem answers an RFC 9457 problem, in the shape the API uses.
func problem(w http.ResponseWriter, status int, code, detail string) {
	hd := w.Header()
	hd.Set("Content-Type", "application/problem+json")
	hd.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"type":"urn:crm-pipeline:problem:%s","title":%q,"status":%d,"detail":%q,"code":%q,"errors":[]}`+"\n",
		code, http.StatusText(status), status, detail, code)
}
