package httpapi

import (
	"io/fs"
	"net/http"
)

// PageFile serves the file name of fsys (read once, here), of type typ, as a part of a
// page: with the policy csp returns for the request (Content-Security-Policy), no
// sniffing, no referrer, never in a frame, and revalidated on each load.
func PageFile(fsys fs.FS, name, typ string, csp func(*http.Request) string) http.HandlerFunc {
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		panic(err) // embedded at build time: a missing file is a build mistake
	}
	return func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", csp(r))
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Type", typ)
		h.Set("Cache-Control", "no-cache")
		_, _ = w.Write(b)
	}
}
