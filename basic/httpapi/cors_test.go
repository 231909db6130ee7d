package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"secbuy/basic/httpapi"
)

func TestCORS(t *testing.T) {
	var reached int
	h := httpapi.CORS("http://127.0.0.1:8088, http://localhost:8088", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached++
		w.WriteHeader(http.StatusTeapot)
	}))
	for _, tc := range []struct {
		name, method, origin, preflight string
		status                          int
		allow                           string
		reached                         bool
	}{
		{"same origin", "GET", "", "", http.StatusTeapot, "", true},
		{"listed origin", "POST", "http://localhost:8088", "", http.StatusTeapot, "http://localhost:8088", true},
		{"preflight of a listed origin", "OPTIONS", "http://127.0.0.1:8088", "POST", http.StatusNoContent, "http://127.0.0.1:8088", false},
		{"origin not listed", "POST", "http://evil.example", "", http.StatusTeapot, "", true},
		{"preflight not listed", "OPTIONS", "http://evil.example", "POST", http.StatusTeapot, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reached = 0
			r := httptest.NewRequest(tc.method, "/payment/payorder", nil)
			if tc.origin != "" {
				r.Header.Set("Origin", tc.origin)
			}
			if tc.preflight != "" {
				r.Header.Set("Access-Control-Request-Method", tc.preflight)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.status || w.Header().Get("Access-Control-Allow-Origin") != tc.allow || (reached == 1) != tc.reached {
				t.Errorf("status %d, allow-origin %q, reached %d; want %d, %q, %v",
					w.Code, w.Header().Get("Access-Control-Allow-Origin"), reached, tc.status, tc.allow, tc.reached)
			}
			if w.Header().Get("Vary") != "Origin" {
				t.Errorf("Vary %q, want Origin", w.Header().Get("Vary"))
			}
			if tc.allow != "" && w.Header().Get("Access-Control-Expose-Headers") != "Retry-After" {
				t.Errorf("Retry-After not exposed to the page")
			}
			if w.Header().Get("Access-Control-Allow-Credentials") != "" {
				t.Error("credentials allowed")
			}
			if tc.preflight != "" && tc.allow != "" && w.Header().Get("Access-Control-Allow-Headers") == "" {
				t.Error("preflight without allowed headers")
			}
		})
	}
	// No origins: no CORS at all, a preflight goes to the routes (which answer 405).
	r := httptest.NewRequest("OPTIONS", "/payment/payorder", nil)
	r.Header.Set("Origin", "http://127.0.0.1:8088")
	r.Header.Set("Access-Control-Request-Method", "POST")
	w := httptest.NewRecorder()
	httpapi.CORS("", http.NotFoundHandler()).ServeHTTP(w, r)
	if w.Code != http.StatusNotFound || w.Header().Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("without origins: %d %q; want the routes' own answer", w.Code, w.Header().Get("Access-Control-Allow-Origin"))
	}
}
