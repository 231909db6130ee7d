package httpapi

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"secbuy/basic/connect"
	"secbuy/basic/testutil"
)

// The limits themselves are tested against a real Redis in order-web/handler.

func TestGuardClientIP(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name, header, remote, xff, want string
	}{
		{"connection address", "", "192.0.2.1:5000", "", "192.0.2.1"},
		{"XFF ignored unless configured", "", "192.0.2.1:5000", "203.0.113.9", "192.0.2.1"},
		{"trusted XFF: last address", "X-Forwarded-For", "10.0.0.1:5000", "1.2.3.4, 203.0.113.9", "203.0.113.9"},
		{"trusted XFF absent", "X-Forwarded-For", "10.0.0.1:5000", "", "10.0.0.1"},
		{"trusted XFF garbage", "X-Forwarded-For", "10.0.0.1:5000", "1.2.3.4, nonsense", "10.0.0.1"},
		{"IPv4 in IPv6", "", "[::ffff:192.0.2.7]:5000", "", "192.0.2.7"},
		{"IPv6 by /64", "", "[2001:db8:1:2:3:4:5:6]:5000", "", "2001:db8:1:2::/64"},
		{"IPv6 with zone", "", "[fe80::1%eth0]:5000", "", "fe80::/64"},
	} {
		t.Run(c.name, func(t *testing.T) {
			g, err := NewGuard(GuardConfig{IPHeader: c.header})
			if err != nil {
				t.Fatal(err)
			}
			defer g.Close()
			r := httptest.NewRequest("POST", "/", nil)
			r.RemoteAddr = c.remote
			if c.xff != "" {
				r.Header.Set("X-Forwarded-For", c.xff)
			}
			ip, ok := g.clientIP(r)
			if !ok || ipBucket(ip) != c.want {
				t.Errorf("client IP %v (%v), bucket %q; want %q", ip, ok, ipBucket(ip), c.want)
			}
		})
	}
}

func TestGuardConfig(t *testing.T) {
	t.Parallel()
	if _, err := NewGuard(GuardConfig{IPExempt: "127.0.0.0/8,nonsense"}); err == nil {
		t.Error("a bad exempt CIDR was accepted")
	}
	g, err := NewGuard(GuardConfig{IPExempt: " 127.0.0.1/8 , ::1/128,"})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if len(g.exempt) != 2 || g.exempt[0].String() != "127.0.0.0/8" {
		t.Errorf("exempt = %v", g.exempt)
	}
	var none *Guard
	if _, ok := none.Admit(httptest.NewRecorder(), httptest.NewRequest("POST", "/", nil), "1", 1, "1:k"); !ok {
		t.Error("a nil Guard refused")
	}
}

// TestGuardFailsOpenOnce: with Redis unreachable a press is let through, and the presses
// after it, for a while, do not try Redis again (so an outage adds no timeout to each).
func TestGuardFailsOpenOnce(t *testing.T) {
	t.Parallel()
	closed := testutil.ClosedAddr(t)
	g, err := NewGuard(GuardConfig{Redis: connect.Redis{Addr: closed}, KeyPrefix: "x:", UserPerSec: 1, InflightTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	r := httptest.NewRequest("POST", "/", nil)
	if _, ok := g.Admit(httptest.NewRecorder(), r, "1", 1, "1:a"); !ok {
		t.Fatal("refused with Redis down; want it let through")
	}
	if g.skipUntil.Load() <= time.Now().UnixNano() {
		t.Fatal("after a Redis failure the guard will ask Redis again at once")
	}
	dials := g.rdb.PoolStats().Misses
	if dials == 0 {
		t.Fatal("the first press did not try Redis")
	}
	for i := range 10 {
		if _, ok := g.Admit(httptest.NewRecorder(), r, "1", 1, "1:a"); !ok {
			t.Fatalf("press %d refused with Redis down", i+2)
		}
	}
	if n := g.rdb.PoolStats().Misses; n != dials {
		t.Errorf("10 more presses tried %d new Redis connections; want none while failing open", n-dials)
	}
}

// After Redis lost its scripts (a restart, SCRIPT FLUSH), the pipeline sends them whole
// again: presses are still checked, not let through unchecked.
func TestGuardAfterScriptFlush(t *testing.T) {
	t.Parallel()
	g, err := NewGuard(GuardConfig{Redis: connect.Redis{Addr: "127.0.0.1:6379"}, KeyPrefix: fmt.Sprintf("secbuy-test:flush:%d:", time.Now().UnixNano()),
		UserPerSec: 1, InflightTTL: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	ctx := context.Background()
	if err := g.rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("Redis on 127.0.0.1:6379 is needed (`make services` starts it): %v", err)
	}
	if err := g.rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("POST", "/", nil)
	release, ok := g.Admit(httptest.NewRecorder(), r, "1", 1, "1:a")
	if !ok {
		t.Fatal("first press refused")
	}
	release()
	if g.skipUntil.Load() != 0 {
		t.Fatal("the guard failed open: the flushed script was not sent again")
	}
	w := httptest.NewRecorder()
	if _, ok := g.Admit(w, r, "1", 1, "1:b"); ok || w.Code != 429 {
		t.Errorf("second press within the second: admitted %v, %d; want 429 (the limit is checked)", ok, w.Code)
	}
}

// A mark lives as long as its press, renewed by the instance holding it, and lapses within
// its TTL once that instance is gone (closed without releasing: killed).
func TestGuardRenewsMarks(t *testing.T) {
	t.Parallel()
	cfg := GuardConfig{Redis: connect.Redis{Addr: "127.0.0.1:6379"}, KeyPrefix: fmt.Sprintf("secbuy-test:renew:%d:", time.Now().UnixNano()),
		InflightTTL: 300 * time.Millisecond}
	holder, err := NewGuard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewGuard(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := holder.rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis on 127.0.0.1:6379 is needed (`make services` starts it): %v", err)
	}
	r := httptest.NewRequest("POST", "/", nil)
	if _, ok := holder.Admit(httptest.NewRecorder(), r, "1", 1, "press-a"); !ok {
		t.Fatal("first press refused")
	}
	// A slow press: three TTLs later its mark still turns away another press.
	time.Sleep(900 * time.Millisecond)
	w := httptest.NewRecorder()
	if _, ok := other.Admit(w, r, "1", 1, "press-b"); ok || w.Code != 409 {
		t.Fatalf("another press while the first is in flight: admitted %v, %d; want 409", ok, w.Code)
	}
	// The holder dies: its mark lapses within the TTL, and a resend goes through.
	start := time.Now()
	_ = holder.Close()
	for {
		w := httptest.NewRecorder()
		release, ok := other.Admit(w, r, "1", 1, "press-a")
		if ok {
			release()
			break
		}
		if w.Code != 503 {
			t.Fatalf("a resend of the press in flight: %d, want 503", w.Code)
		}
		if time.Since(start) > time.Second {
			t.Fatal("the mark of a dead instance did not lapse within a second (TTL 300 ms)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Limit charges the user's budget that Admit uses, and sets no in-flight mark: a ticket
// fetch (Limit) and a press (Admit) share one rate, and a fetch never turns a press away
// as "already in progress".
func TestGuardLimit(t *testing.T) {
	t.Parallel()
	g, err := NewGuard(GuardConfig{Redis: connect.Redis{Addr: "127.0.0.1:6379"}, KeyPrefix: fmt.Sprintf("secbuy-test:limit:%d:", time.Now().UnixNano()),
		UserPerSec: 2, InflightTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := g.rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("Redis on 127.0.0.1:6379 is needed (`make services` starts it): %v", err)
	}
	r := httptest.NewRequest("GET", "/", nil)
	if !g.Limit(httptest.NewRecorder(), r, "7") {
		t.Fatal("first fetch refused")
	}
	release, ok := g.Admit(httptest.NewRecorder(), r, "7", 1, "7:a")
	if !ok {
		t.Fatal("a press after a fetch refused: the fetch left a mark")
	}
	defer release()
	w := httptest.NewRecorder()
	if g.Limit(w, r, "7") || w.Code != 429 || w.Header().Get("Retry-After") == "" {
		t.Errorf("a third request within the second (burst 2): %d %q; want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if !g.Limit(httptest.NewRecorder(), r, "8") {
		t.Error("another user's fetch refused")
	}
	if g.skipUntil.Load() != 0 {
		t.Error("the guard failed open")
	}
	var nilGuard *Guard
	if !nilGuard.Limit(httptest.NewRecorder(), r, "7") {
		t.Error("a nil Guard refused")
	}
}
