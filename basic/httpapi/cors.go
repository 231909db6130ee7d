package httpapi

import (
	"net/http"
	"strings"
)

// CORS lets the pages of origins (comma-separated, such as "http://127.0.0.1:8088") call
// h from another origin: their requests get Access-Control-Allow-Origin naming the
// origin, and their preflights (OPTIONS with Access-Control-Request-Method) an answer of
// 204. The pages send their bearer token in the Authorization header, never a cookie, so
// credentials are not allowed; an origin not listed gets no CORS header, and the browser
// keeps the answer from its page.
func CORS(origins string, h http.Handler) http.Handler {
	allowed := map[string]bool{}
	for _, o := range strings.Split(origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			allowed[o] = true
		}
	}
	if len(allowed) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The answer depends on the Origin: a cache must not give one origin's to another.
		w.Header().Add("Vary", "Origin")
		origin := r.Header.Get("Origin")
		if !allowed[origin] {
			h.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Expose-Headers", "Retry-After") // the page resends after it
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type, Idempotency-Key")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		h.ServeHTTP(w, r)
	})
}
