package handler_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go-micro.dev/v6/client"

	"secbuy/basic/auth"
	"secbuy/basic/connect"
	"secbuy/basic/httpapi"
	"secbuy/basic/testutil"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-web/handler"
	"secbuy/proto/outcome"
)

// redisAddr is the Redis the guard tests use: SECBUY_REDIS_ADDR or the local default.
func redisAddr() string {
	if a := os.Getenv("SECBUY_REDIS_ADDR"); a != "" {
		return a
	}
	return "127.0.0.1:6379"
}

// testPrefix returns a key prefix of the test's own and deletes its keys at the end. The
// test fails (it does not skip) if Redis is not running.
func testPrefix(t *testing.T) string {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr()})
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		t.Fatalf("Redis is not reachable at %s (%v): start it with `make services` or `redis-server --daemonize yes`, or set SECBUY_REDIS_ADDR", redisAddr(), err)
	}
	prefix := fmt.Sprintf("secbuy-test:%s:%d:", strings.ReplaceAll(t.Name(), "/", "."), time.Now().UnixNano())
	t.Cleanup(func() {
		defer rdb.Close()
		keys, err := rdb.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			err = rdb.Del(ctx, keys...).Err()
		}
		if err != nil {
			t.Errorf("clean up %s*: %v", prefix, err)
		}
	})
	return prefix
}

func newGuard(t *testing.T, c httpapi.GuardConfig) *httpapi.Guard {
	t.Helper()
	if c.Redis.Addr == "" {
		c.Redis.Addr = redisAddr()
		c.KeyPrefix = testPrefix(t)
	}
	g, err := httpapi.NewGuard(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = g.Close() })
	return g
}

// press is one POST /order/sell.
type press struct {
	user int64
	id   int64
	ip   string // RemoteAddr host; 192.0.2.1 if empty
	xff  string // X-Forwarded-For header
	key  string // Idempotency-Key
}

func sell(t *testing.T, h http.Handler, p press) *httptest.ResponseRecorder {
	t.Helper()
	if p.ip == "" {
		p.ip = "192.0.2.1"
	}
	if p.id == 0 {
		p.id = 7
	}
	req := httptest.NewRequest("POST", "/order/sell", strings.NewReader(`{"id":`+strconv.FormatInt(p.id, 10)+`}`))
	req.RemoteAddr = net.JoinHostPort(p.ip, "40000")
	req.Header.Set("Authorization", testutil.Bearer(t, secret, p.user, time.Hour))
	if p.xff != "" {
		req.Header.Set("X-Forwarded-For", p.xff)
	}
	if p.key != "" {
		req.Header.Set("Idempotency-Key", p.key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

// TestRateLimits: quick presses against the per-user and per-IP limits, in a real Redis.
// The want list holds each press's status; a 429 must carry Retry-After and the JSON
// error {"code":429,"detail":"slow down","reason":"SLOW_DOWN"}.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	// 10 presses of one user for 10 commodities (no in-flight overlap), user 1..n
	// otherwise.
	oneUser := func(n int, ip string) []press {
		ps := make([]press, n)
		for i := range ps {
			ps[i] = press{user: 42, id: int64(i + 1), ip: ip}
		}
		return ps
	}
	manyUsers := func(n int, ip, xff string) []press {
		ps := make([]press, n)
		for i := range ps {
			ps[i] = press{user: int64(100 + i), ip: ip, xff: xff}
		}
		return ps
	}
	seq := func(parts ...[]press) []press {
		var out []press
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name    string
		cfg     httpapi.GuardConfig
		presses []press
		want    []int
	}{
		{"6th quick press of one user is refused",
			httpapi.GuardConfig{UserPerSec: 5},
			oneUser(6, ""),
			[]int{200, 200, 200, 200, 200, 429}},
		{"another user is not affected",
			httpapi.GuardConfig{UserPerSec: 5},
			seq(oneUser(6, ""), []press{{user: 43}, {user: 42, id: 99}}),
			[]int{200, 200, 200, 200, 200, 429, 200, 429}},
		{"per-IP limit across users",
			httpapi.GuardConfig{UserPerSec: 5, IPPerSec: 3},
			seq(manyUsers(4, "198.51.100.9", ""), []press{{user: 900, ip: "203.0.113.5"}}),
			[]int{200, 200, 200, 429, 200}},
		{"IPv6 clients of one /64 share a limit",
			httpapi.GuardConfig{UserPerSec: 5, IPPerSec: 2},
			[]press{{user: 1, ip: "2001:db8::1"}, {user: 2, ip: "2001:db8::2"}, {user: 3, ip: "2001:db8::3"}, {user: 4, ip: "2001:db8:0:1::1"}},
			[]int{200, 200, 429, 200}},
		{"exempt network has no per-IP limit, the user limit still applies",
			httpapi.GuardConfig{UserPerSec: 5, IPPerSec: 2, IPExempt: "127.0.0.0/8, ::1/128"},
			seq(manyUsers(4, "127.0.0.1", ""), oneUser(6, "127.0.0.1")),
			[]int{200, 200, 200, 200, 200, 200, 200, 200, 200, 429}},
		{"X-Forwarded-For is ignored unless configured",
			httpapi.GuardConfig{UserPerSec: 5, IPPerSec: 2},
			[]press{{user: 1, xff: "10.0.0.1"}, {user: 2, xff: "10.0.0.2"}, {user: 3, xff: "10.0.0.3"}},
			[]int{200, 200, 429}},
		{"X-Forwarded-For from a trusted proxy: its last address counts",
			httpapi.GuardConfig{UserPerSec: 5, IPPerSec: 2, IPHeader: "X-Forwarded-For"},
			seq(manyUsers(3, "10.9.9.9", "1.1.1.1, 203.0.113.7"), []press{{user: 9, ip: "10.9.9.9", xff: "203.0.113.8"}}),
			[]int{200, 200, 429, 200}},
		{"no limits configured",
			httpapi.GuardConfig{},
			oneUser(10, ""),
			[]int{200, 200, 200, 200, 200, 200, 200, 200, 200, 200}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeOrders{rsp: &pb.Response{Success: true, Order: pbOrder("created", 0)}}
			h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, newGuard(t, tc.cfg), time.Second)
			defer h.Close()
			routes := h.Routes()
			refused := 0
			for i, p := range tc.presses {
				w := sell(t, routes, p)
				if w.Code != tc.want[i] {
					t.Errorf("press %d (%+v): status %d; want %d (%s)", i+1, p, w.Code, tc.want[i], w.Body.String())
				}
				if w.Code == 429 {
					refused++
					if ra, err := strconv.Atoi(w.Header().Get("Retry-After")); err != nil || ra < 1 {
						t.Errorf("press %d: Retry-After %q; want a positive number of seconds", i+1, w.Header().Get("Retry-After"))
					}
					if got := strings.TrimSpace(w.Body.String()); got != `{"error":{"code":429,"detail":"slow down","reason":"SLOW_DOWN"},"success":false}` {
						t.Errorf("press %d: body %s", i+1, got)
					}
				}
			}
			if n := f.calls(); n != len(tc.presses)-refused {
				t.Errorf("order-srv called %d times; want %d (a refused press must not reach it)", n, len(tc.presses)-refused)
			}
		})
	}
}

// blockingOrders is an OrderService whose CreateOrders waits for release; entered gets
// one value per buy that reaches it.
type blockingOrders struct {
	fakeOrders
	entered chan *pb.CreateRequest
	release chan struct{}
}

func (b *blockingOrders) CreateOrders(ctx context.Context, in *pb.CreateBatchRequest, opts ...client.CallOption) (*pb.CreateBatchResponse, error) {
	for _, it := range in.Items {
		b.entered <- it
	}
	<-b.release
	return b.fakeOrders.CreateOrders(ctx, in, opts...)
}

// TestDuplicatePress: while a user's buy of a commodity is in flight, a second press for
// it gets 409 "already in progress", and a resend of the same press (same Idempotency-Key)
// 503 "busy, try again" (its answer is not known yet); neither reaches order-srv. Other
// commodities and other users go through; once the first is answered, the user may press
// again.
func TestDuplicatePress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		second      press
		want        int
		wantEntered int
	}{
		{"second press, no key", press{user: 42}, 409, 1},
		{"second press, another key", press{user: 42, key: "press-2"}, 409, 1},
		{"resend with the same key", press{user: 42, key: "press-1"}, 503, 1},
		{"same user, other commodity", press{user: 42, id: 8}, 200, 2},
		{"other user, same commodity", press{user: 43}, 200, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &blockingOrders{entered: make(chan *pb.CreateRequest, 10), release: make(chan struct{}),
				fakeOrders: fakeOrders{rsp: &pb.Response{Success: true, Order: pbOrder("created", 0)}}}
			h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, newGuard(t, httpapi.GuardConfig{UserPerSec: 5, IPPerSec: 200}), time.Second)
			defer h.Close()
			routes := h.Routes()
			first := make(chan int)
			go func() { first <- sell(t, routes, press{user: 42, key: "press-1"}).Code }()
			<-f.entered // the first press is in flight
			second := make(chan *httptest.ResponseRecorder)
			go func() { second <- sell(t, routes, tc.second) }()
			if tc.want == 200 {
				<-f.entered
			} else {
				w := <-second
				want := `{"error":{"code":409,"detail":"already in progress","reason":"IN_PROGRESS"},"success":false}`
				if tc.want == 503 {
					want = `{"error":{"code":503,"detail":"busy, try again","reason":"BUSY"},"success":false}`
				}
				if w.Code != tc.want || w.Header().Get("Retry-After") != "1" || strings.TrimSpace(w.Body.String()) != want {
					t.Errorf("second press: %d %q %s; want %s with Retry-After 1", w.Code, w.Header().Get("Retry-After"), w.Body.String(), want)
				}
			}
			close(f.release)
			if c := <-first; c != 200 {
				t.Errorf("first press: %d; want 200", c)
			}
			if tc.want == 200 {
				if w := <-second; w.Code != 200 {
					t.Errorf("second press: %d; want 200", w.Code)
				}
			}
			if n := len(f.creates); n != tc.wantEntered {
				t.Errorf("order-srv got %d buys; want %d", n, tc.wantEntered)
			}
			// Released: the same user may press again.
			if w := sell(t, routes, press{user: 42, key: "press-3"}); w.Code != 200 {
				t.Errorf("press after the first was answered: %d %s; want 200", w.Code, w.Body.String())
			}
		})
	}
}

// TestConcurrentPresses: two presses of one user released at the same moment: exactly one
// reaches order-srv, the other gets 409.
func TestConcurrentPresses(t *testing.T) {
	t.Parallel()
	f := &blockingOrders{entered: make(chan *pb.CreateRequest, 10), release: make(chan struct{}),
		fakeOrders: fakeOrders{rsp: &pb.Response{Success: true, Order: pbOrder("created", 0)}}}
	h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, newGuard(t, httpapi.GuardConfig{UserPerSec: 5}), time.Second)
	defer h.Close()
	routes := h.Routes()
	start := make(chan struct{})
	codes := make(chan int, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			codes <- sell(t, routes, press{user: 42, key: fmt.Sprintf("k%d", i)}).Code
		}()
	}
	close(start)
	// The refused one answers while the other is held in order-srv.
	if c := <-codes; c != 409 {
		t.Errorf("first answer: %d; want 409", c)
	}
	close(f.release)
	wg.Wait()
	if c := <-codes; c != 200 {
		t.Errorf("second answer: %d; want 200", c)
	}
	if len(f.entered) != 1 {
		t.Errorf("%d presses reached order-srv; want 1", len(f.entered))
	}
}

// TestRedisDown: with Redis unreachable the guard fails open: buys are served.
func TestRedisDown(t *testing.T) {
	t.Parallel()
	closed := testutil.ClosedAddr(t)
	f := &fakeOrders{rsp: &pb.Response{Success: true, Order: pbOrder("created", 0)}}
	g := newGuard(t, httpapi.GuardConfig{Redis: connect.Redis{Addr: closed}, KeyPrefix: "x:", UserPerSec: 1, IPPerSec: 1})
	h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, g, time.Second)
	defer h.Close()
	routes := h.Routes()
	for i := range 10 {
		if w := sell(t, routes, press{user: 42}); w.Code != 200 {
			t.Fatalf("press %d with Redis down: %d %s; want 200", i+1, w.Code, w.Body.String())
		}
	}
	if f.calls() != 10 {
		t.Errorf("order-srv called %d times; want 10", f.calls())
	}
	// That the guard does not ask Redis again for every press is tested in basic/httpapi.
}

// TestSoldOutBeforeLimits: the sold-out mark answers before the rate limits, so a crowd
// refused for "sold out" does not use up their rate.
func TestSoldOutBeforeLimits(t *testing.T) {
	t.Parallel()
	f := &fakeOrders{rsp: &pb.Response{Error: outcome.Refuse(outcome.Reason_SOLD_OUT)}}
	f.setHolders(&pb.HoldersResponse{Success: true, SoldOut: true, ValidForMs: 60_000})
	h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, newGuard(t, httpapi.GuardConfig{UserPerSec: 1}), time.Second)
	defer h.Close()
	routes := h.Routes()
	if w := sell(t, routes, press{user: 42}); w.Code != 409 {
		t.Fatalf("first press: %d; want sold out", w.Code)
	}
	testutil.Eventually(t, 5*time.Second, "the holders of the commodity", func() bool { return h.KnowsSoldOut(7) })
	for i := range 5 {
		w := sell(t, routes, press{user: 42})
		if w.Code != 409 || !strings.Contains(w.Body.String(), "sold out") {
			t.Fatalf("press %d: %d %s; want 409 sold out", i+1, w.Code, w.Body.String())
		}
	}
	if f.calls() != 1 {
		t.Errorf("order-srv called %d times; want 1", f.calls())
	}
}
