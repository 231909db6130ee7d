// Package httpapitest holds the checks the web services' tests and fuzz tests share: that
// a reply has the JSON shape of every secbuy reply and gives nothing away.
package httpapitest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"secbuy/proto/outcome"
)

// Error is the error object of a failed reply, for tests to decode.
type Error struct {
	Code    int    `json:"code"`
	Detail  string `json:"detail"`
	Reason  string `json:"reason"`
	Cause   string `json:"cause"` // for INVALID_TOKEN: which TOKEN_* reason
	Message string `json:"message"`
}

// leaks are pieces of text that only a stack trace or a Go error dump would put in a reply.
var leaks = []string{"goroutine ", ".go:", "runtime/", "runtime.", "panic", "\n\t"}

// CheckReply fails t unless w holds one JSON object of the form {"success":true,...} with
// status 200 or 202, or {"success":false,"error":{"code":S,"detail":"...","reason":R}}
// with status S from 400 to 599, other than 500, and R the name of an outcome.Reason; with the fakes of a test, a 500 only comes from a
// panic that httpapi.Mux caught. It also fails on anything that looks like a stack
// trace. It returns the decoded reply.
func CheckReply(t testing.TB, w *httptest.ResponseRecorder) map[string]any {
	t.Helper()
	body := w.Body.Bytes()
	if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("status %d: Content-Type %q, want JSON; body %q", w.Code, ct, body)
	}
	for _, s := range leaks {
		if bytes.Contains(body, []byte(s)) {
			t.Fatalf("status %d: reply contains %q (a stack trace?): %q", w.Code, s, body)
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		t.Fatalf("status %d: reply is not a JSON object (%v): %q", w.Code, err, body)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		t.Fatalf("status %d: more than one JSON value in the reply: %q", w.Code, body)
	}
	ok, isBool := m["success"].(bool)
	switch {
	case !isBool:
		t.Fatalf("status %d: no boolean success: %q", w.Code, body)
	case ok:
		if w.Code != 200 && w.Code != 202 {
			t.Fatalf("success with status %d: %q", w.Code, body)
		}
		if _, has := m["error"]; has {
			t.Fatalf("success with an error: %q", body)
		}
	default:
		e, _ := m["error"].(map[string]any)
		code, _ := e["code"].(json.Number)
		detail, _ := e["detail"].(string)
		if w.Code < 400 || w.Code > 599 || code.String() != strconv.Itoa(w.Code) || detail == "" {
			t.Fatalf("failure with status %d: want a 4xx/5xx status equal to error.code and a detail: %q", w.Code, body)
		}
		reason, _ := e["reason"].(string)
		if outcome.Reason_value[reason] == 0 {
			t.Fatalf("failure with status %d: error.reason %q is not a reason: %q", w.Code, reason, body)
		}
		if cause, has := e["cause"]; has {
			if name, _ := cause.(string); outcome.Reason_value[name] == 0 {
				t.Fatalf("failure with status %d: error.cause %v is not a reason: %q", w.Code, cause, body)
			}
		}
		if w.Code == 500 {
			t.Fatalf("status 500 (a handler panicked?): %q", body)
		}
	}
	return m
}

// HostileBodies are the seeds every fuzz target of a JSON route starts from, built around
// one of the route's fields: a NUL, invalid UTF-8 (raw and as a lone surrogate escape), the
// field twice, an unknown field, deep nesting, numbers too big for any Go integer, and a
// 1 MB string. None of them may get a 5xx or change anything.
func HostileBodies(field string) [][]byte {
	f := strconv.Quote(field)
	return [][]byte{
		[]byte(`{` + f + `:"a\u0000b"}`),
		[]byte(`{` + f + ":\"a\xffb\"}"),
		[]byte(`{` + f + `:"\ud800"}`),
		[]byte("{\"\xff\":1}"),
		[]byte(`{` + f + `:43,` + f + `:44}`),
		[]byte(`{` + f + `:"a",` + f + `:"b"}`),
		[]byte(`{` + f + `:1,"unknownField":1}`),
		[]byte(`{` + f + `:` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`),
		[]byte(`{` + f + `:99999999999999999999}`),
		[]byte(`{` + f + `:-99999999999999999999}`),
		[]byte(`{` + f + `:1e400}`),
		[]byte(`{` + f + `:"` + strings.Repeat("x", 1<<20) + `"}`),
	}
}

// NoServerError fails t if w is a 5xx: with the fakes of a fuzz test, whatever the client
// sent is answered by the client's fault (4xx) or a success, never "busy" or an error.
func NoServerError(t testing.TB, w *httptest.ResponseRecorder) {
	t.Helper()
	if w.Code >= 500 {
		t.Fatalf("status %d for a client's input: %.300q", w.Code, w.Body.Bytes())
	}
}
