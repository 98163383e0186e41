// Package web is the dashboard: a single-page application (plain ES modules, CSS and SVG,
// no build step and no third-party code) embedded in the binary and served at / (the page)
// and /ui/ (its assets). The page is a client of the public HTTP API under /api/v1 and of its
// live stream, like any other client: this package serves static files only, carries no data
// and reaches into nothing of the service.
//
// Assets are served with their Content-Type, an ETag and, under /ui/<version>/ (the version
// is a digest of every asset, so it changes with any of them), as immutable; the page itself
// is revalidated on every load. Every answer carries a strict Content-Security-Policy
// (script-src 'self', no inline script or style, connect-src 'self', frame-ancestors 'none'),
// X-Content-Type-Options: nosniff and Referrer-Policy: no-referrer.
//
// Imports from this module: none (the README's package table, checked by imports_test.go).
package web
