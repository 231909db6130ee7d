// Package httpapi holds what the three web services share at the HTTP edge: the JSON reply
// shape of the original system, strict body decoding, method checks, the bearer token, and
// the one mapping from an RPC outcome to an HTTP status.
package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path"
	"strconv"
	"time"

	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/auth"
)

// Error is the error object of every failed reply.
type Error struct {
	Code   int    `json:"code"`
	Detail string `json:"detail"`
}

func (e *Error) Error() string { return e.Detail }

// Errorf returns an *Error with status code.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// JSON writes v with status.
func JSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Fail writes {"success":false,"error":{"code":code,"detail":...}} with status code.
func Fail(w http.ResponseWriter, e *Error) {
	JSON(w, e.Code, map[string]any{"success": false, "error": e})
}

// OK writes {"success":true, key: v} with status 200.
func OK(w http.ResponseWriter, key string, v any) {
	JSON(w, http.StatusOK, map[string]any{"success": true, key: v})
}

// Decode reads r's JSON body, of at most max bytes, into v. Unknown fields, wrong types,
// trailing data and oversized bodies are refused.
func Decode(w http.ResponseWriter, r *http.Request, max int64, v any) *Error {
	r.Body = http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &tooBig):
			return Errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", max)
		case errors.Is(err, io.EOF):
			return Errorf(http.StatusBadRequest, "empty body: want a JSON object")
		case errors.As(err, &typeErr):
			return Errorf(http.StatusBadRequest, "field %q: want %s", typeErr.Field, typeErr.Type)
		default:
			return Errorf(http.StatusBadRequest, "malformed JSON body: %s", clean(err))
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return Errorf(http.StatusRequestEntityTooLarge, "body larger than %d bytes", max)
		}
		return Errorf(http.StatusBadRequest, "trailing data after the JSON object")
	}
	return nil
}

// clean keeps json's error message but drops anything that is not plain ASCII text, so a
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
func PositiveID(name, s string) (int64, *Error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, Errorf(http.StatusBadRequest, "%s must be a positive integer", name)
	}
	return id, nil
}

// User returns the buyer's user id from the bearer token, or a 401 error. Tokens that
// verified are remembered until they expire.
func User(secret string, r *http.Request) (int64, *Error) {
	id, err := auth.FromRequestWith(secret, r, func(secret, token string) (int64, error) {
		return tokens.verify(secret, token, auth.Verify)
	})
	if errors.Is(err, auth.ErrNoToken) {
		return 0, Errorf(http.StatusUnauthorized, "missing bearer token")
	}
	if err != nil {
		return 0, Errorf(http.StatusUnauthorized, "invalid or expired token")
	}
	return id, nil
}

// Route serves h only for method; other methods get 405 with an Allow header.
func Route(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			// The method is not echoed: a reply repeats nothing the client sent.
			Fail(w, Errorf(http.StatusMethodNotAllowed, "method not allowed; use %s", method))
			return
		}
		h(w, r)
	}
}

// Recover turns a panic in h into a 500 JSON reply without a stack trace, and logs it.
// Unknown paths, and paths not in canonical form (which the mux would answer with an HTML
// redirect), get a 404 JSON reply.
func Recover(mux *http.ServeMux) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				slog.Error("handler panic", "path", r.URL.Path, "panic", v)
				Fail(w, Errorf(http.StatusInternalServerError, "internal error"))
			}
		}()
		if _, pattern := mux.Handler(r); pattern == "" || r.URL.EscapedPath() != path.Clean(r.URL.EscapedPath()) {
			Fail(w, Errorf(http.StatusNotFound, "no such route"))
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// FromRPC turns a failed RPC call into the reply the caller should see: the service being
// down, slow or overloaded is 503 "busy"; a go-micro error carrying a 4xx keeps it.
func FromRPC(err error) *Error {
	e := merrors.FromError(err)
	if e.Code >= 400 && e.Code < 500 && e.Code != http.StatusRequestTimeout {
		return &Error{Code: int(e.Code), Detail: e.Detail}
	}
	return Errorf(http.StatusServiceUnavailable, "busy, try again")
}

// Limiter caps the requests a web instance has in flight to its RPC services. A request
// that finds every slot taken waits up to the limiter's wait, then gets 503 "busy" with
// Retry-After: 1, so a crowd queues for a bounded time instead of piling up connections.
type Limiter struct {
	slots chan struct{}
	wait  time.Duration
}

// NewLimiter returns a Limiter of max slots; waiting for one lasts at most wait.
func NewLimiter(max int, wait time.Duration) *Limiter {
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
		return l.release, true
	default:
	}
	t := time.NewTimer(l.wait)
	defer t.Stop()
	select {
	case l.slots <- struct{}{}:
		return l.release, true
	case <-t.C:
	case <-r.Context().Done():
	}
	w.Header().Set("Retry-After", "1")
	Fail(w, Errorf(http.StatusServiceUnavailable, "busy, try again"))
	return nil, false
}

func (l *Limiter) release() { <-l.slots }
