// Package httpapi holds what the three web services share at the HTTP edge: the JSON reply
// shape of the original system, strict body decoding, method checks, the bearer token, and
// the one mapping from an RPC's answer (or failure) to an HTTP status and body, Reply. The
// words of every refusal are made in one place, reasons.go, from its outcome.Reason.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"time"

	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/auth"
	"secbuy/basic/metrics"
	"secbuy/proto/outcome"
)

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Fail writes the refusal e: {"success":false,"error":{"code":S,"detail":...,"reason":...}}
// with status S. A refusal that is its reason alone (most of a crowd's: "sold out") is
// written from bytes rendered once.
func Fail(w http.ResponseWriter, r *http.Request, e *outcome.Error) {
	note(w, e.GetReason())
	if b, ok := rendered(r, e); ok {
		h := w.Header()
		h["Content-Type"] = jsonType
		h["X-Content-Type-Options"] = nosniff
		w.WriteHeader(int(e.GetCode()))
		_, _ = w.Write(b)
		return
	}
	body := problem(r, e)
	JSON(w, body.Code, failure{Error: body})
}

// failure is the body of a failed reply (its fields in the order they always had).
type failure struct {
	Error   problemJSON `json:"error"`
	Success bool        `json:"success"`
}

// The headers of every JSON reply, shared (never changed) so that setting them allocates
// nothing.
var (
	jsonType = []string{"application/json; charset=utf-8"}
	nosniff  = []string{"nosniff"}
)

// OK writes {"success":true, key: v} with status 200.
func OK(w http.ResponseWriter, key string, v any) {
	JSON(w, http.StatusOK, map[string]any{"success": true, key: v})
}

// Reply answers a request with what an RPC returned: err, the call's own failure (a
// service down, slow or overloaded is 503 "busy"); refusal, the Error of the response; and
// m, the response's object (nil: none), shown under key as render makes it. A success is
// 200 {"success":true, key: ...}; an order whose outcome is not known yet (ORDER_PENDING)
// is 202 with the order; a refusal is its status with the error, and the object too if
// there is one. A success without an object is "busy": the service answered nothing.
func Reply[M comparable, J any](w http.ResponseWriter, r *http.Request, err error, refusal *outcome.Error, key string, m M, render func(M) J) {
	var none M
	switch {
	case err != nil:
		Fail(w, r, FromRPC(err))
	case refusal.GetReason() == outcome.Reason_ORDER_PENDING && m != none:
		note(w, outcome.Reason_ORDER_PENDING)
		JSON(w, http.StatusAccepted, map[string]any{"success": true, key: render(m)})
	case refusal != nil:
		note(w, refusal.GetReason())
		e := problem(r, refusal)
		body := map[string]any{"success": false, "error": e}
		if m != none {
			body[key] = render(m)
		}
		JSON(w, e.Code, body)
	case m == none:
		Fail(w, r, outcome.Refuse(outcome.Reason_BUSY))
	default:
		OK(w, key, render(m))
	}
}

// FromRPC turns a failed RPC call into the refusal the caller should see: a go-micro 400
// (a request the service refused whole) is bad input; anything else (the service down,
// slow, overloaded or failing) is 503 "busy", which the client resends.
func FromRPC(err error) *outcome.Error {
	if e := merrors.FromError(err); e.Code == http.StatusBadRequest {
		return outcome.Invalid(clean(errors.New(e.Detail)))
	}
	return outcome.Refuse(outcome.Reason_BUSY)
}

// Invalid returns the INVALID_INPUT refusal with a detail made from format.
func Invalid(format string, args ...any) *outcome.Error {
	return outcome.Invalid(fmt.Sprintf(format, args...))
}

// clean keeps an error's message but drops anything that is not plain ASCII text, so a
// reply never echoes raw bytes of hostile input.
func clean(err error) string {
	s := []rune(err.Error())
	if len(s) > 120 {
		s = s[:120]
	}
	for i, c := range s {
		if c < 0x20 || c > 0x7e {
			s[i] = '?'
		}
	}
	return string(s)
}

// PositiveID parses s as an id: a decimal integer from 1 to 2^63-1.
func PositiveID(name, s string) (int64, *outcome.Error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, Invalid("%s must be a positive integer", name)
	}
	return id, nil
}

// User returns the buyer (the token's sub) from the request's bearer token, or the 401
// refusal: UNAUTHENTICATED with no token, INVALID_TOKEN with a bad one, its cause saying why.
func User(v *auth.Verifier, r *http.Request) (string, *outcome.Error) {
	id, err := v.FromRequest(r)
	switch {
	case errors.Is(err, auth.ErrNoToken):
		return "", outcome.Refuse(outcome.Reason_UNAUTHENTICATED)
	case err != nil:
		e := outcome.Refuse(outcome.Reason_INVALID_TOKEN)
		for _, c := range tokenCauses {
			if errors.Is(err, c.Err) {
				e.Cause = c.Reason
				break
			}
		}
		return "", e
	}
	return id, nil
}

// tokenCauses are the causes of INVALID_TOKEN, by the auth error that says why.
var tokenCauses = []outcome.Rule{
	{Err: auth.ErrMalformed, Reason: outcome.Reason_TOKEN_MALFORMED},
	{Err: auth.ErrUnsigned, Reason: outcome.Reason_TOKEN_UNSIGNED},
	{Err: auth.ErrAlgorithm, Reason: outcome.Reason_TOKEN_ALG_NOT_ALLOWED},
	{Err: auth.ErrKeyMismatch, Reason: outcome.Reason_TOKEN_KEY_MISMATCH},
	{Err: auth.ErrUnknownKey, Reason: outcome.Reason_TOKEN_UNKNOWN_KEY},
	{Err: auth.ErrSignature, Reason: outcome.Reason_TOKEN_BAD_SIGNATURE},
	{Err: auth.ErrNoExpiry, Reason: outcome.Reason_TOKEN_NO_EXPIRY},
	{Err: auth.ErrExpired, Reason: outcome.Reason_TOKEN_EXPIRED},
	{Err: auth.ErrNotYetValid, Reason: outcome.Reason_TOKEN_NOT_YET_VALID},
	{Err: auth.ErrIssuer, Reason: outcome.Reason_TOKEN_BAD_ISSUER},
	{Err: auth.ErrAudience, Reason: outcome.Reason_TOKEN_BAD_AUDIENCE},
	{Err: auth.ErrSubject, Reason: outcome.Reason_TOKEN_BAD_SUBJECT},
}

// Endpoint is one route of a service: a path, its method and its handler.
type Endpoint struct {
	Path, Method string
	Handler      http.HandlerFunc
}

// Get is the endpoint of GET path.
func Get(path string, h http.HandlerFunc) Endpoint { return Endpoint{path, http.MethodGet, h} }

// Post is the endpoint of POST path.
func Post(path string, h http.HandlerFunc) Endpoint { return Endpoint{path, http.MethodPost, h} }

// Mux returns a service's whole HTTP surface: the endpoints (each answering other methods
// with 405, a panic with a JSON 500, and counted: see serve), and a JSON 404 for any other
// path (withNotFound).
func Mux(endpoints ...Endpoint) http.Handler {
	mux := http.NewServeMux()
	for _, e := range endpoints {
		mux.HandleFunc(e.Path, serve(e.Path, Route(e.Method, e.Handler)))
	}
	return withNotFound(mux)
}

// DecodeID reads a body of the form {"id":N}, of at most max bytes, and returns N, which
// must be a positive integer; what names it in the refusal ("id (the order id)").
func DecodeID(w http.ResponseWriter, r *http.Request, max int64, what string) (int64, *outcome.Error) {
	var b struct {
		ID int64 `json:"id"`
	}
	if e := Decode(w, r, max, &b); e != nil {
		return 0, e
	}
	if b.ID <= 0 {
		return 0, Invalid("%s must be a positive integer", what)
	}
	return b.ID, nil
}

// Route serves h only for method; other methods get 405 with an Allow header.
func Route(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			// The method is not echoed: a reply repeats nothing the client sent.
			e := outcome.Refuse(outcome.Reason_METHOD_NOT_ALLOWED)
			e.Detail = "method not allowed; use " + method
			Fail(w, r, e)
			return
		}
		h(w, r)
	}
}

// withNotFound answers unknown paths, and paths not in canonical form (which the mux would
// answer with an HTML redirect), with a JSON 404 (counted under the route "unmatched"),
// and everything else from mux.
func withNotFound(mux *http.ServeMux) http.Handler {
	notFound := serve("unmatched", func(w http.ResponseWriter, r *http.Request) {
		Fail(w, r, outcome.Refuse(outcome.Reason_ROUTE_NOT_FOUND))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pattern := mux.Handler(r); pattern == "" || r.URL.EscapedPath() != path.Clean(r.URL.EscapedPath()) {
			notFound(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Limiter caps the requests a web instance has in flight to its RPC services. A request
// that finds every slot taken waits up to the limiter's wait, then gets 503 "busy" with
// Retry-After: 1, so a crowd queues for a bounded time instead of piling up connections.
type Limiter struct {
	slots chan struct{}
	wait  time.Duration
}

// NewLimiter returns a Limiter of max slots; waiting for one lasts at most wait. Its use
// is on /metrics (secbuy_inflight_in_use, _capacity and _wait_seconds).
func NewLimiter(max int, wait time.Duration) *Limiter {
	metrics.InflightCapacity.Set(float64(max))
	return &Limiter{slots: make(chan struct{}, max), wait: wait}
}

// Acquire takes a slot, or writes the 503 reply and returns false. Call release when done.
// A nil Limiter never limits.
func (l *Limiter) Acquire(w http.ResponseWriter, r *http.Request) (release func(), ok bool) {
	if l == nil {
		return func() {}, true
	}
	select {
	case l.slots <- struct{}{}:
		metrics.InflightInUse.Inc()
		metrics.InflightWait.Observe(0)
		return l.release, true
	default:
	}
	start := time.Now()
	t := time.NewTimer(l.wait)
	defer t.Stop()
	defer func() { metrics.InflightWait.Observe(time.Since(start).Seconds()) }()
	select {
	case l.slots <- struct{}{}:
		metrics.InflightInUse.Inc()
		return l.release, true
	case <-t.C:
	case <-r.Context().Done():
	}
	w.Header().Set("Retry-After", "1")
	Fail(w, r, outcome.Refuse(outcome.Reason_BUSY))
	return nil, false
}

func (l *Limiter) release() {
	<-l.slots
	metrics.InflightInUse.Dec()
}

// Paging reads a list route's ?offset and ?limit: absent is 0, otherwise a non-negative
// integer, and the limit at most maxLimit (0: the RPC service bounds it).
func Paging(q url.Values, maxLimit int64) (offset, limit int64, e *outcome.Error) {
	var page [2]int64
	for i, name := range []string{"offset", "limit"} {
		s := q.Get(name)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, Invalid("%s must be a non-negative integer", name)
		}
		page[i] = n
	}
	if maxLimit > 0 && page[1] > maxLimit {
		return 0, 0, Invalid("limit must be at most %d", maxLimit)
	}
	return page[0], page[1], nil
}
