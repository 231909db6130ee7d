package httpapi

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"secbuy/basic/auth"
)

func TestDecode(t *testing.T) {
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
		case c.want != 0 && (e == nil || e.Code != c.want):
			t.Errorf("Decode(%q) = %v; want %d", c.in, e, c.want)
		case e != nil && strings.ContainsAny(e.Detail, "\x00\xff"):
			t.Errorf("Decode(%q) echoes raw bytes: %q", c.in, e.Detail)
		}
	}
}

func TestLimiter(t *testing.T) {
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
	go func() { time.Sleep(10 * time.Millisecond); release() }()
	if rel, ok := l.Acquire(httptest.NewRecorder(), r); !ok {
		t.Error("a request waiting for a slot that frees up was refused")
	} else {
		rel()
	}
	var none *Limiter
	if _, ok := none.Acquire(httptest.NewRecorder(), r); !ok {
		t.Error("a nil limiter refused")
	}
}

func TestTokenCache(t *testing.T) {
	c := newTokenCache()
	calls := 0
	verify := func(secret, token string) (int64, error) {
		calls++
		return auth.Verify(secret, token)
	}
	good, _ := auth.Mint("s", 7, time.Minute)
	for i := 0; i < 3; i++ {
		if u, err := c.verify("s", good, verify); err != nil || u != 7 {
			t.Fatalf("verify = %d, %v", u, err)
		}
	}
	if calls != 1 {
		t.Errorf("a good token was verified %d times; want once, then cached", calls)
	}
	if _, err := c.verify("other-secret", good, verify); err == nil {
		t.Error("a cached token was accepted under another secret")
	}
	short, _ := auth.Mint("s", 8, 1100*time.Millisecond)
	if _, err := c.verify("s", short, verify); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2100 * time.Millisecond) // jwt expiry has one-second resolution
	if _, err := c.verify("s", short, verify); err == nil {
		t.Error("an expired token was accepted from the cache")
	}
	forged, _ := auth.Mint("x", 9, time.Minute)
	for i := 0; i < 2; i++ {
		if _, err := c.verify("s", forged, verify); err == nil {
			t.Error("a forged token was accepted")
		}
	}
}
