package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/httpapi/httpapitest"
	"secbuy/proto/outcome"
)

func TestDecode(t *testing.T) {
	t.Parallel()
	type body struct {
		ID int64 `json:"id"`
	}
	for _, c := range []struct {
		in   string
		want int
	}{
		{`{"id":3}`, 0},
		{``, 400},
		{`{"id":`, 400},
		{`{"id":"3"}`, 400},
		{`{"id":3.5}`, 400},
		{`{"id":99999999999999999999}`, 400},
		{`{"id":3,"x":1}`, 400},
		{`{"id":3} {"id":4}`, 400},
		{`{"id":3}` + strings.Repeat(" ", 100), 413},
		{"{\"id\":\"\x00\xff\"}", 400},
	} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(c.in))
		var b body
		e := Decode(httptest.NewRecorder(), r, 64, &b)
		switch {
		case c.want == 0 && (e != nil || b.ID != 3):
			t.Errorf("Decode(%q) = %v, %+v; want id 3", c.in, e, b)
		case c.want != 0 && (e == nil || int(e.Code) != c.want):
			t.Errorf("Decode(%q) = %v; want %d", c.in, e, c.want)
		case e != nil && strings.ContainsFunc(e.Detail, func(r rune) bool { return r == 0 || r == utf8.RuneError }):
			t.Errorf("Decode(%q) echoes raw bytes: %q", c.in, e.Detail)
		}
	}
}

func TestLimiter(t *testing.T) {
	t.Parallel()
	l := NewLimiter(1, 50*time.Millisecond)
	r := httptest.NewRequest("POST", "/", nil)
	release, ok := l.Acquire(httptest.NewRecorder(), r)
	if !ok {
		t.Fatal("first request refused")
	}
	w := httptest.NewRecorder()
	start := time.Now()
	if _, ok := l.Acquire(w, r); ok {
		t.Fatal("second request got a slot while the only one was taken")
	}
	if w.Code != 503 || w.Header().Get("Retry-After") != "1" || time.Since(start) < 50*time.Millisecond {
		t.Errorf("refusal: %d, Retry-After %q after %v; want 503, 1, after waiting", w.Code, w.Header().Get("Retry-After"), time.Since(start))
	}
	release()
	// A slot that frees up while a request waits for it: the request gets it. The wait is
	// long, so that a busy machine (CI, -race) cannot make it lapse first.
	long := NewLimiter(1, time.Minute)
	held, _ := long.Acquire(httptest.NewRecorder(), r)
	go func() { time.Sleep(10 * time.Millisecond); held() }()
	if rel, ok := long.Acquire(httptest.NewRecorder(), r); !ok {
		t.Error("a request waiting for a slot that frees up was refused")
	} else {
		rel()
	}
	var none *Limiter
	if _, ok := none.Acquire(httptest.NewRecorder(), r); !ok {
		t.Error("a nil limiter refused")
	}
}

type thing struct {
	ID int64 `json:"id"`
}

// Reply is the one mapping from an RPC's answer to HTTP.
func TestReply(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name       string
		err        error
		refusal    *outcome.Error
		v          *thing
		wantStatus int
		wantReason string
		wantDetail string
		wantThing  bool
	}{
		{"success", nil, nil, &thing{1}, 200, "", "", true},
		{"refusal with its object", nil, outcome.Refuse(outcome.Reason_ALREADY_BOUGHT), &thing{2}, 409, "ALREADY_BOUGHT", "already bought", true},
		{"refusal alone", nil, outcome.Refuse(outcome.Reason_SOLD_OUT), nil, 409, "SOLD_OUT", "sold out", false},
		{"pending is accepted", nil, outcome.Refuse(outcome.Reason_ORDER_PENDING), &thing{3}, 202, "", "", true},
		{"bad input keeps its detail", nil, outcome.Invalid("id must be a positive integer"), nil, 400, "INVALID_INPUT", "id must be a positive integer", false},
		{"not found", nil, outcome.Refuse(outcome.Reason_PAYMENT_NOT_FOUND), nil, 404, "PAYMENT_NOT_FOUND", "no payment for this order (unknown order, or its payment is not made yet)", false},
		{"a failed call is busy", merrors.InternalServerError("x", "storage unavailable"), nil, nil, 503, "BUSY", "busy, try again", false},
		{"a timeout is busy", merrors.Timeout("x", "slow"), nil, nil, 503, "BUSY", "busy, try again", false},
		{"a refused call is bad input", merrors.BadRequest("x", "at most 1000 items"), nil, nil, 400, "INVALID_INPUT", "at most 1000 items", false},
		{"nothing to show is busy", nil, nil, nil, 503, "BUSY", "busy, try again", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			Reply(w, httptest.NewRequest("GET", "/", nil), c.err, c.refusal, "thing", c.v, func(v *thing) *thing { return v })
			m := httpapitest.CheckReply(t, w)
			if w.Code != c.wantStatus {
				t.Errorf("status %d, want %d: %s", w.Code, c.wantStatus, w.Body)
			}
			if _, has := m["thing"]; has != c.wantThing {
				t.Errorf("thing in the reply: %v, want %v: %s", has, c.wantThing, w.Body)
			}
			e, _ := m["error"].(map[string]any)
			if e["reason"] != nil && e["reason"] != c.wantReason || e["reason"] == nil && c.wantReason != "" {
				t.Errorf("reason %v, want %q", e["reason"], c.wantReason)
			}
			if c.wantDetail != "" && e["detail"] != c.wantDetail {
				t.Errorf("detail %v, want %q", e["detail"], c.wantDetail)
			}
		})
	}
}

// The words come in the language the client prefers; the English detail is always there.
func TestProblemLanguage(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ accept, want string }{
		{"", ""},
		{"en-US,en;q=0.9", ""},
		{"zh-CN,zh;q=0.9,en;q=0.8", "已售罄"},
		{"en;q=0.5, zh-TW;q=0.9", "已售罄"},
		{"fr", ""},
		{"garbage;;;q=", ""},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("Accept-Language", c.accept)
		p := problem(r, outcome.Refuse(outcome.Reason_SOLD_OUT))
		if p.Detail != "sold out" || p.Message != c.want || p.Code != 409 {
			t.Errorf("Accept-Language %q: %+v; want detail sold out, message %q", c.accept, p, c.want)
		}
	}
}

// Every reason has its words and a status.
func TestEveryReasonHasWords(t *testing.T) {
	t.Parallel()
	for n, name := range outcome.Reason_name {
		r := outcome.Reason(n)
		w, ok := words[r]
		if !ok || w.en == "" || w.zh == "" {
			t.Errorf("%s has no words", name)
		}
		if s := r.Status(); s < 400 || s > 599 {
			t.Errorf("%s: status %d", name, s)
		}
		if Text(r, "zh") != w.zh || Text(r, "en") != w.en {
			t.Errorf("%s: Text does not give its words", name)
		}
	}
}
