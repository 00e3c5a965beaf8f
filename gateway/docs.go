package gateway

import (
	_ "embed"
	"net/http"

	"github.com/kompetensnav/kompetensnav/gen/openapi"
)

// docsPage is the API reference: one self-contained page, its script and
// style inline, that renders /openapi.json in the browser. Written for this
// project so it needs no CDN and works offline.
//
//go:embed docs.html
var docsPage []byte

func serveOpenAPI(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Lets a browser tool on another origin (an API client, an editor) load it.
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(openapi.Document)
}

func serveDocs(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	// The page needs its own inline script and style and a fetch to this
	// origin, nothing else; it builds the DOM with textContent only, and
	// this policy keeps it that way.
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "+
		"connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(docsPage)
}
