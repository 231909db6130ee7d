package httpapi

import (
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLockout(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l := NewLockout(5, time.Minute, 100, "")
	l.now = func() time.Time { return now }
	from := func(addr string) func(bool) (bool, time.Duration) {
		return func(right bool) (bool, time.Duration) {
			r := httptest.NewRequest("POST", "/", nil)
			r.RemoteAddr = addr
			return l.Try(r, func() bool { return right })
		}
	}
	a, b := from("192.0.2.1:1000"), from("192.0.2.2:1000")
	for i := range 5 {
		if ok, wait := a(false); ok || wait != 0 {
			t.Fatalf("wrong key %d: ok %v, wait %v; want a plain failure", i+1, ok, wait)
		}
	}
	now = now.Add(10 * time.Second)
	if ok, wait := a(false); ok || wait != 50*time.Second {
		t.Errorf("6th wrong key: ok %v, wait %v; want locked out for the 50 s left", ok, wait)
	}
	if ok, wait := a(true); ok || wait == 0 {
		t.Errorf("right key from the locked-out IP: ok %v, wait %v; want locked out too", ok, wait)
	}
	if ok, wait := from("192.0.2.1:2000")(true); ok || wait == 0 {
		t.Errorf("right key from another port of the locked-out IP: ok %v, wait %v; want locked out", ok, wait)
	}
	if ok, wait := b(true); !ok || wait != 0 {
		t.Errorf("right key from another IP: ok %v, wait %v; want it to pass", ok, wait)
	}
	if ok, wait := b(false); ok || wait != 0 {
		t.Errorf("first wrong key from another IP: ok %v, wait %v; want a plain failure", ok, wait)
	}
	now = now.Add(50 * time.Second)
	if ok, wait := a(true); !ok || wait != 0 {
		t.Errorf("right key once the window ended: ok %v, wait %v; want it to pass", ok, wait)
	}
	// Right keys are not failures: any number of them never locks an IP out.
	for range 20 {
		if ok, _ := b(true); !ok {
			t.Fatal("a right key was refused")
		}
	}
}

// The client IP is the trusted proxy's header's, as for the buy limiter; IPv6 counts by /64.
func TestLockoutClientIP(t *testing.T) {
	t.Parallel()
	l := NewLockout(1, time.Minute, 100, "X-Forwarded-For")
	try := func(remote, xff string, right bool) time.Duration {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = remote
		if xff != "" {
			r.Header.Set("X-Forwarded-For", xff)
		}
		_, wait := l.Try(r, func() bool { return right })
		return wait
	}
	try("127.0.0.1:1", "203.0.113.5", false)
	if try("127.0.0.1:1", "203.0.113.5", true) == 0 {
		t.Error("the proxied client that failed is not locked out")
	}
	if try("127.0.0.1:1", "203.0.113.6", true) != 0 {
		t.Error("another client behind the same proxy is locked out")
	}
	try("[2001:db8::1]:1", "", false)
	if try("[2001:db8::2]:1", "", true) == 0 {
		t.Error("another address of the same IPv6 /64 is not locked out")
	}
}

// Concurrent wrong keys from one IP are counted exactly: Max plain failures, the rest
// locked out; meanwhile every right key from another IP passes.
func TestLockoutConcurrent(t *testing.T) {
	t.Parallel()
	l := NewLockout(5, time.Minute, 100, "")
	const n = 64
	var failed, locked, passed atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 2 * n {
		wg.Go(func() {
			r := httptest.NewRequest("POST", "/", nil)
			right := false
			r.RemoteAddr = "192.0.2.1:1"
			if i%2 == 1 {
				r.RemoteAddr, right = "192.0.2.2:1", true
			}
			<-start
			ok, wait := l.Try(r, func() bool { return right })
			switch {
			case ok:
				passed.Add(1)
			case wait > 0:
				locked.Add(1)
			default:
				failed.Add(1)
			}
		})
	}
	close(start)
	wg.Wait()
	if failed.Load() != 5 || locked.Load() != n-5 || passed.Load() != n {
		t.Errorf("failed %d, locked %d, passed %d; want 5, %d, %d", failed.Load(), locked.Load(), passed.Load(), n-5, n)
	}
}

// The lockout remembers a bounded number of clients, the most recent.
func TestLockoutBounded(t *testing.T) {
	t.Parallel()
	l := NewLockout(1, time.Minute, 2, "")
	try := func(addr string, right bool) time.Duration {
		r := httptest.NewRequest("POST", "/", nil)
		r.RemoteAddr = addr
		_, wait := l.Try(r, func() bool { return right })
		return wait
	}
	for _, a := range []string{"192.0.2.1:1", "192.0.2.2:1", "192.0.2.3:1"} {
		try(a, false)
	}
	if l.clients.Len() != 2 {
		t.Errorf("%d clients remembered; want 2", l.clients.Len())
	}
	if try("192.0.2.3:1", true) == 0 {
		t.Error("the most recent client is forgotten")
	}
	if try("192.0.2.1:1", true) != 0 {
		t.Error("the oldest client is still remembered")
	}
}
