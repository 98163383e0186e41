package web

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func newHandler(t *testing.T) *Handler {
	t.Helper()
	h, err := New()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func get(t *testing.T, h http.Handler, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestPage serves the page with the version in every asset URL, revalidated, with the
// security headers.
func TestPage(t *testing.T) {
	h := newHandler(t)
	w := get(t, h, "/", nil)
	if w.Code != 200 || w.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	body := w.Body.String()
	if strings.Contains(body, versionPlaceholder) || !strings.Contains(body, "/ui/"+h.Version()+"/app.js") {
		t.Fatalf("page does not name the versioned assets:\n%s", body)
	}
	for k, want := range map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-cache",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for _, must := range []string{"script-src 'self'", "frame-ancestors 'none'", "connect-src 'self'", "style-src 'self'"} {
		if !strings.Contains(ContentSecurityPolicy, must) {
			t.Errorf("CSP lacks %s", must)
		}
	}
	if strings.Contains(ContentSecurityPolicy, "unsafe") {
		t.Error("CSP allows something unsafe")
	}
}

// TestAssets: content types, immutable caching under the version, revalidation without it,
// 304 on a matching ETag, gzip when asked, 404 and 405 as problems.
func TestAssets(t *testing.T) {
	h := newHandler(t)
	v := h.Version()
	for path, ctype := range map[string]string{
		"/ui/" + v + "/app.js":    "text/javascript; charset=utf-8",
		"/ui/" + v + "/style.css": "text/css; charset=utf-8",
		"/ui/" + v + "/icon.svg":  "image/svg+xml",
	} {
		w := get(t, h, path, nil)
		if w.Code != 200 || w.Header().Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
		}
		if cc := w.Header().Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s: Cache-Control %q", path, cc)
		}
		if w.Header().Get("Content-Security-Policy") == "" || w.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: security headers missing", path)
		}
	}
	w := get(t, h, "/ui/app.js", nil)
	if w.Code != 200 || w.Header().Get("Cache-Control") != "no-cache" || w.Header().Get("ETag") == "" {
		t.Fatalf("unversioned asset: %d %v", w.Code, w.Header())
	}
	etag := w.Header().Get("ETag")
	if w := get(t, h, "/ui/app.js", map[string]string{"If-None-Match": etag}); w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d", w.Code)
	}
	// An older build's version still gets today's file, revalidated.
	if w := get(t, h, "/ui/0123456789abcdef/app.js", nil); w.Code != 200 || w.Header().Get("Cache-Control") != "no-cache" {
		t.Errorf("old version: %d %q", w.Code, w.Header().Get("Cache-Control"))
	}
	gz := get(t, h, "/ui/"+v+"/board.js", map[string]string{"Accept-Encoding": "gzip, br"})
	if gz.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("no gzip: %v", gz.Header())
	}
	zr, err := gzip.NewReader(gz.Body)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(zr)
	if want, _ := assets.ReadFile("assets/ui/board.js"); !bytes.Equal(plain, want) {
		t.Error("gzip body differs from the file")
	}
	if w := get(t, h, "/ui/"+v+"/board.js", map[string]string{"Accept-Encoding": "gzip;q=0"}); w.Header().Get("Content-Encoding") != "" {
		t.Error("gzip;q=0 got gzip")
	}
	if w := get(t, h, "/ui/nope.js", nil); w.Code != 404 || w.Header().Get("Content-Type") != "application/problem+json" {
		t.Errorf("unknown asset: %d %q", w.Code, w.Header().Get("Content-Type"))
	}
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("x"))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 405 || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST /: %d %v", rec.Code, rec.Header())
	}
	r = httptest.NewRequest(http.MethodHead, "/ui/app.js", nil)
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 200 || rec.Body.Len() != 0 || rec.Header().Get("Content-Length") == "" {
		t.Errorf("HEAD: %d len %d", rec.Code, rec.Body.Len())
	}
}

// TestWithAPI routes / and /ui/ to the dashboard and everything else to the API untouched.
func TestWithAPI(t *testing.T) {
	h := newHandler(t)
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(299) })
	all := h.WithAPI(api)
	for path, want := range map[string]int{"/": 200, "/ui/app.js": 200, "/api/v1/pipelines": 299, "/healthz": 299, "/metrics": 299, "/favicon.ico": 299, "/uix": 299} {
		if w := get(t, all, path, nil); w.Code != want {
			t.Errorf("%s: %d, want %d", path, w.Code, want)
		}
	}
}

// TestNoInlineCode keeps the assets within the CSP and away from markup injection: no inline
// script or style or event attribute in the page, no innerHTML, eval or new Function in the
// modules, no token in a URL (the modules send it only as the Authorization header).
func TestNoInlineCode(t *testing.T) {
	page, _ := assets.ReadFile("assets/index.html")
	for _, m := range regexp.MustCompile(`<script[^>]*>`).FindAll(page, -1) {
		if !strings.Contains(string(m), " src=") {
			t.Errorf("index.html has an inline script: %s", m)
		}
	}
	for _, re := range []string{`\sstyle=`, `\son[a-z]+=`, `<style`} {
		if m := regexp.MustCompile(re).Find(page); m != nil {
			t.Errorf("index.html has %q", m)
		}
	}
	err := fs.WalkDir(assets, "assets/ui", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".js") {
			return err
		}
		b, _ := assets.ReadFile(p)
		src := string(b)
		for _, bad := range []string{"innerHTML", "outerHTML", "insertAdjacentHTML", "eval(", "new Function", "document.write", "setAttribute('style'", "console.log", "?token=", "&token="} {
			if strings.Contains(src, bad) {
				t.Errorf("%s uses %s", p, bad)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
