package handler

import (
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"testing"

	"secbuy/basic/httpapi/httpapitest"
)

// Wrong admin keys, by header or by the sign-in form, lock the client IP out after
// AdminFailures: 429 "slow down" with Retry-After, even for the right key, and nothing is
// created; the right key from another IP still works.
func TestAdminKeyLockout(t *testing.T) {
	t.Parallel()
	stock := &listStock{}
	h := New(stock, adminKey, 4096).Routes()
	const bad, good = "192.0.2.10:5000", "192.0.2.11:5000"
	create := func(key, remote string) int {
		w := serve(h, adminReq{method: "POST", target: "/stock/create", contentType: "application/json",
			key: key, remote: remote, body: `{"name":"x","count":1}`})
		httpapitest.CheckReply(t, w)
		return w.Code
	}
	signInFrom := func(key, remote string) int {
		b, _ := json.Marshal(map[string]string{"key": key})
		w := serve(h, adminReq{method: "POST", target: "/admin/signin", contentType: "application/json", body: string(b), remote: remote})
		httpapitest.CheckReply(t, w)
		return w.Code
	}
	for i := range AdminFailures {
		attempt := create
		if i%2 == 1 {
			attempt = signInFrom // the form's wrong keys count with the header's
		}
		if code := attempt("wrong-"+strconv.Itoa(i), bad); code != http.StatusUnauthorized {
			t.Fatalf("wrong key %d: %d; want 401", i+1, code)
		}
	}
	for _, c := range []struct {
		what string
		try  func(key, remote string) int
		key  string
	}{{"wrong key", create, "wrong"}, {"right key", create, adminKey}, {"right key, sign-in", signInFrom, adminKey}} {
		w := serve(h, adminReq{method: "POST", target: "/stock/create", contentType: "application/json",
			key: c.key, remote: bad, body: `{"name":"x","count":1}`})
		if c.try != nil {
			if code := c.try(c.key, bad); code != http.StatusTooManyRequests {
				t.Errorf("%s from the locked-out IP: %d; want 429", c.what, code)
			}
		}
		var rep struct {
			Error struct {
				Reason string `json:"reason"`
			} `json:"error"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &rep)
		if w.Code != http.StatusTooManyRequests || rep.Error.Reason != "SLOW_DOWN" || w.Header().Get("Retry-After") == "" {
			t.Errorf("%s from the locked-out IP: %d %s, Retry-After %q; want 429 SLOW_DOWN with Retry-After",
				c.what, w.Code, w.Body, w.Header().Get("Retry-After"))
		}
	}
	if n := stock.creates.Load(); n != 0 {
		t.Errorf("%d commodities created from the locked-out IP; want none", n)
	}
	if code := create(adminKey, good); code != http.StatusOK {
		t.Errorf("right key from another IP: %d; want 200", code)
	}
	if code := signInFrom(adminKey, good); code != http.StatusOK {
		t.Errorf("sign-in with the right key from another IP: %d; want 200", code)
	}
}

// Concurrent wrong keys from one IP get exactly AdminFailures 401s and 429s after, while
// the right key from another IP is never refused.
func TestAdminKeyLockoutConcurrent(t *testing.T) {
	t.Parallel()
	stock := &listStock{}
	h := New(stock, adminKey, 4096).Routes()
	const n = 40
	codes := make([]int, 2*n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			q := adminReq{method: "POST", target: "/stock/create", contentType: "application/json",
				key: "wrong", remote: "192.0.2.20:1", body: `{"name":"x","count":1}`}
			if i >= n {
				q.key, q.remote = adminKey, "192.0.2.21:1"
			}
			<-start
			codes[i] = serve(h, q).Code
		})
	}
	close(start)
	wg.Wait()
	count := map[int]int{}
	for _, c := range codes[:n] {
		count[c]++
	}
	if count[http.StatusUnauthorized] != AdminFailures || count[http.StatusTooManyRequests] != n-AdminFailures {
		t.Errorf("wrong keys from one IP: %v; want %d × 401 and %d × 429", count, AdminFailures, n-AdminFailures)
	}
	for i, c := range codes[n:] {
		if c != http.StatusOK {
			t.Errorf("right key %d from another IP: %d; want 200", i, c)
		}
	}
	if got := stock.creates.Load(); got != n {
		t.Errorf("%d created; want %d (the right keys only)", got, n)
	}
}
