package handler

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/httpapi/httpapitest"
	"secbuy/basic/testutil"
	"secbuy/basic/turned"
	orderpb "secbuy/order-srv/proto/order"
	paymentpb "secbuy/payment-srv/proto/payment"
	"secbuy/proto/outcome"
	pb "secbuy/stock-srv/proto/stock"
)

// listStock is a fake StockService for the shop's page: it lists commodities, creates
// any, and counts its calls. If gate is set, a list waits for it to close.
type listStock struct {
	pb.StockService
	list    []*pb.Commodity
	err     error
	gate    chan struct{}
	lists   atomic.Int64
	creates atomic.Int64
	lastReq atomic.Pointer[pb.ListRequest]
}

func (s *listStock) ListCommodities(_ context.Context, in *pb.ListRequest, _ ...client.CallOption) (*pb.ListResponse, error) {
	s.lists.Add(1)
	s.lastReq.Store(in)
	if s.gate != nil {
		<-s.gate
	}
	if s.err != nil {
		return nil, s.err
	}
	return &pb.ListResponse{Success: true, Commodities: s.list}, nil
}

func (s *listStock) CreateCommodity(_ context.Context, in *pb.Commodity, _ ...client.CallOption) (*pb.Response, error) {
	s.creates.Add(1)
	return &pb.Response{Success: true, Commodity: &pb.Commodity{Id: 77, Name: in.Name, Count: in.Count}}, nil
}

// audits counts Audit calls per commodity; fail lists the commodities whose call fails
// (an RPC error), refuse those whose answer is a refusal.
type audits struct {
	mu     sync.Mutex
	calls  map[int64]int
	fail   map[int64]bool
	refuse map[int64]bool
}

func (a *audits) call(id int64) (failed, refused bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.calls == nil {
		a.calls = map[int64]int{}
	}
	a.calls[id]++
	return a.fail[id], a.refuse[id]
}

func (a *audits) count(id int64) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls[id]
}

// fakeOrders answers Audit with live and cancelled orders: sid*10 and sid.
type fakeOrders struct{ audits }

func (f *fakeOrders) Audit(_ context.Context, in *orderpb.AuditRequest, _ ...client.CallOption) (*orderpb.AuditResponse, error) {
	failed, refused := f.call(in.Sid)
	switch {
	case failed:
		return nil, merrors.Timeout("order", "slow")
	case refused:
		return &orderpb.AuditResponse{Error: outcome.Refuse(outcome.Reason_BUSY)}, nil
	}
	return &orderpb.AuditResponse{Success: true, Live: in.Sid * 10, Cancelled: in.Sid, Pending: 99, Failed: 99}, nil
}

// fakePayments answers Audit with paid sid*5 and expired sid.
type fakePayments struct{ audits }

func (f *fakePayments) Audit(_ context.Context, in *paymentpb.AuditRequest, _ ...client.CallOption) (*paymentpb.AuditResponse, error) {
	failed, refused := f.call(in.CommodityId)
	switch {
	case failed:
		return nil, errors.New("service not found")
	case refused:
		return &paymentpb.AuditResponse{Error: outcome.Refuse(outcome.Reason_BUSY)}, nil
	}
	return &paymentpb.AuditResponse{Success: true, Paid: in.CommodityId * 5, Expired: in.CommodityId, Unpaid: 99}, nil
}

// testRedis returns a client of the Redis at 127.0.0.1:6379, and a key prefix of this test's own.
func testRedis(t *testing.T) (*redis.Client, string) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	t.Cleanup(func() { _ = rdb.Close() })
	if err := rdb.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("this test needs Redis on 127.0.0.1:6379 (`make services` starts it): %v", err)
	}
	return rdb, fmt.Sprintf("secbuy-test:stockweb:%s:%d:", t.Name(), time.Now().UnixNano())
}

// clock is a handler's settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// adminReq is a request to the handler with the given credentials.
type adminReq struct {
	method, target, contentType, key, cookie string
	body                                     string
	tls                                      bool
	remote                                   string // host:port; empty: httptest's
}

func serve(h http.Handler, q adminReq) *httptest.ResponseRecorder {
	r := httptest.NewRequest(q.method, q.target, strings.NewReader(q.body))
	if q.contentType != "" {
		r.Header.Set("Content-Type", q.contentType)
	}
	if q.key != "" {
		r.Header.Set("X-Admin-Key", q.key)
	}
	if q.cookie != "" {
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: q.cookie})
	}
	if q.tls {
		r.TLS = &tls.ConnectionState{}
	}
	if q.remote != "" {
		r.RemoteAddr = q.remote
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// signIn signs in to h with key and returns the session cookie it set (nil: none).
func signIn(t *testing.T, h http.Handler, key string, overTLS bool) (*httptest.ResponseRecorder, *http.Cookie) {
	t.Helper()
	b, _ := json.Marshal(map[string]string{"key": key})
	w := serve(h, adminReq{method: "POST", target: "/admin/signin", contentType: "application/json", body: string(b), tls: overTLS})
	httpapitest.CheckReply(t, w)
	for _, c := range w.Result().Cookies() {
		if c.Name == SessionCookie {
			return w, c
		}
	}
	return w, nil
}

func TestSignIn(t *testing.T) {
	t.Parallel()
	h := New(&listStock{}, adminKey, 4096).Routes()
	for _, c := range []struct {
		name string
		key  string
		tls  bool
	}{{"plain HTTP", adminKey, false}, {"over TLS", adminKey, true}} {
		t.Run(c.name, func(t *testing.T) {
			w, cookie := signIn(t, h, c.key, c.tls)
			if w.Code != 200 || cookie == nil {
				t.Fatalf("right key: %d, cookie %v; want 200 and the session cookie", w.Code, cookie)
			}
			if cookie.Value == adminKey || strings.Contains(cookie.Value, adminKey) {
				t.Errorf("the cookie carries the key in clear: %q", cookie.Value)
			}
			if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(cookie.Value) || cookie.Value != sessionValue(adminKey) {
				t.Errorf("cookie value %q; want the hex HMAC-SHA256 of the label", cookie.Value)
			}
			if !cookie.HttpOnly || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/" {
				t.Errorf("cookie HttpOnly %v SameSite %v Path %q; want HttpOnly, Strict, /", cookie.HttpOnly, cookie.SameSite, cookie.Path)
			}
			if cookie.MaxAge != 0 || !cookie.Expires.IsZero() || cookie.RawExpires != "" {
				t.Errorf("cookie MaxAge %d Expires %v; want a session cookie", cookie.MaxAge, cookie.Expires)
			}
			if cookie.Secure != c.tls {
				t.Errorf("cookie Secure %v over TLS %v", cookie.Secure, c.tls)
			}
		})
	}
	for _, c := range []struct{ name, key, body string }{
		{"wrong key", "nope", ""},
		{"key with a suffix", adminKey + "x", ""},
		{"empty key", "", ""},
		{"the cookie's value as key", sessionValue(adminKey), ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, cookie := signIn(t, h, c.key, false)
			if w.Code != 401 || cookie != nil {
				t.Fatalf("%d, cookie %v; want 401 and no cookie", w.Code, cookie)
			}
			var rep struct{ Error httpapitest.Error }
			_ = json.Unmarshal(w.Body.Bytes(), &rep)
			if rep.Error.Reason != "ADMIN_KEY_REQUIRED" {
				t.Errorf("reason %q; want ADMIN_KEY_REQUIRED", rep.Error.Reason)
			}
		})
	}
	// Without a configured key nobody signs in, not even with an empty key.
	w, cookie := signIn(t, New(&listStock{}, "", 4096).Routes(), "", false)
	if w.Code != 401 || cookie != nil {
		t.Errorf("no admin key configured: %d, cookie %v; want 401", w.Code, cookie)
	}
	// A malformed body is bad input.
	w = serve(h, adminReq{method: "POST", target: "/admin/signin", contentType: "application/json", body: `{"key":1}`})
	if w.Code != 400 || w.Header().Get("Set-Cookie") != "" {
		t.Errorf("key as a number: %d %q; want 400 and no cookie", w.Code, w.Header().Get("Set-Cookie"))
	}
}

func TestSignOut(t *testing.T) {
	t.Parallel()
	w := serve(New(&listStock{}, adminKey, 4096).Routes(), adminReq{method: "POST", target: "/admin/signout", cookie: sessionValue(adminKey)})
	httpapitest.CheckReply(t, w)
	cs := w.Result().Cookies()
	if w.Code != 200 || len(cs) != 1 || cs[0].Name != SessionCookie || cs[0].Value != "" || cs[0].MaxAge >= 0 || cs[0].Path != "/" {
		t.Errorf("sign out: %d %v; want 200 and the cookie cleared", w.Code, cs)
	}
}

// The session cookie opens the stats and, on a JSON request only, creating; X-Admin-Key
// works as it always did.
func TestAdminGuard(t *testing.T) {
	t.Parallel()
	good := sessionValue(adminKey)
	const body = `{"name":"x","count":1}`
	for _, c := range []struct {
		name string
		q    adminReq
		want int
	}{
		{"stats without credentials", adminReq{method: "GET", target: "/admin/stats"}, 401},
		{"stats with the cookie", adminReq{method: "GET", target: "/admin/stats", cookie: good}, 200},
		{"stats with another key's cookie", adminReq{method: "GET", target: "/admin/stats", cookie: sessionValue("other")}, 401},
		{"stats with the key as cookie", adminReq{method: "GET", target: "/admin/stats", cookie: adminKey}, 401},
		{"stats with X-Admin-Key", adminReq{method: "GET", target: "/admin/stats", key: adminKey}, 200},
		{"stats with a wrong X-Admin-Key", adminReq{method: "GET", target: "/admin/stats", key: "nope"}, 401},
		{"stats by POST", adminReq{method: "POST", target: "/admin/stats", cookie: good, contentType: "application/json"}, 405},
		{"create with X-Admin-Key, no content type", adminReq{method: "POST", target: "/stock/create", key: adminKey, body: body}, 200},
		{"create with X-Admin-Key, a form's type", adminReq{method: "POST", target: "/stock/create", key: adminKey, body: body, contentType: "text/plain"}, 200},
		{"create with a wrong X-Admin-Key", adminReq{method: "POST", target: "/stock/create", key: "nope", body: body, contentType: "application/json"}, 401},
		{"create with the cookie, JSON", adminReq{method: "POST", target: "/stock/create", cookie: good, body: body, contentType: "application/json"}, 200},
		{"create with the cookie, JSON with charset", adminReq{method: "POST", target: "/stock/create", cookie: good, body: body, contentType: "application/json; charset=utf-8"}, 200},
		{"create with the cookie, no content type", adminReq{method: "POST", target: "/stock/create", cookie: good, body: body}, 401},
		{"create with the cookie, text/plain", adminReq{method: "POST", target: "/stock/create", cookie: good, body: body, contentType: "text/plain"}, 401},
		{"create with the cookie, a form", adminReq{method: "POST", target: "/stock/create", cookie: good, body: body, contentType: "application/x-www-form-urlencoded"}, 401},
		{"create with the cookie, multipart", adminReq{method: "POST", target: "/stock/create", cookie: good, body: body, contentType: "multipart/form-data; boundary=x"}, 401},
		{"create with a wrong cookie, JSON", adminReq{method: "POST", target: "/stock/create", cookie: sessionValue("other"), body: body, contentType: "application/json"}, 401},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := &listStock{list: []*pb.Commodity{{Id: 1, Name: "a", Count: 2}}}
			w := serve(New(s, adminKey, 4096).Routes(), c.q)
			m := httpapitest.CheckReply(t, w)
			if w.Code != c.want {
				t.Fatalf("status %d, want %d: %v", w.Code, c.want, m)
			}
			reached := s.creates.Load() + s.lists.Load()
			if (c.want == 200) != (reached == 1) {
				t.Errorf("stock-srv called %d times; want %v", reached, c.want == 200)
			}
			if c.want == 401 {
				if e, _ := m["error"].(map[string]any); e["reason"] != "ADMIN_KEY_REQUIRED" {
					t.Errorf("error %v; want ADMIN_KEY_REQUIRED", e)
				}
			}
		})
	}
	// With no admin key configured, the cookie an empty key would have opens nothing.
	s := &listStock{}
	w := serve(New(s, "", 4096).Routes(), adminReq{method: "GET", target: "/admin/stats", cookie: sessionValue("")})
	if w.Code != 401 || s.lists.Load() != 0 {
		t.Errorf("no admin key configured: %d, %d lists; want 401 and none", w.Code, s.lists.Load())
	}
	// The cookie the sign-in set is the one the guard takes.
	h := New(&listStock{}, adminKey, 4096).Routes()
	_, cookie := signIn(t, h, adminKey, false)
	if w := serve(h, adminReq{method: "GET", target: "/admin/stats", cookie: cookie.Value}); w.Code != 200 {
		t.Errorf("stats with the signed-in cookie: %d", w.Code)
	}
}

// statsReply is the stats answer as the page reads it, nulls kept.
type statsReply struct {
	Success     bool             `json:"success"`
	ServerMs    int64            `json:"serverMs"`
	Commodities []map[string]any `json:"commodities"`
}

func getStats(t *testing.T, h http.Handler) statsReply {
	t.Helper()
	w := serve(h, adminReq{method: "GET", target: "/admin/stats", key: adminKey})
	httpapitest.CheckReply(t, w)
	if w.Code != 200 {
		t.Fatalf("stats: %d %s", w.Code, w.Body.String())
	}
	if cc := w.Header().Get("Cache-Control"); cc != "no-store" {
		t.Errorf("stats Cache-Control %q; want no-store", cc)
	}
	var rep statsReply
	if err := json.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	return rep
}

// num reads a figure of a stats commodity: its value, or -1 for null.
func num(t *testing.T, c map[string]any, key string) float64 {
	t.Helper()
	v, ok := c[key]
	if !ok {
		t.Fatalf("commodity %v has no %q", c, key)
	}
	if v == nil {
		return -1
	}
	f, ok := v.(float64)
	if !ok {
		t.Fatalf("%q is %T %v, want a number or null", key, v, v)
	}
	return f
}

func TestStats(t *testing.T) {
	t.Parallel()
	rdb, prefix := testRedis(t)
	// Presses order-web turned away: 4 for commodity 3 and 1 for commodity 2, in one second.
	var at time.Time
	for {
		at = time.Now()
		c := turned.NewCounter(rdb, prefix)
		for range 4 {
			c.Add(3)
		}
		c.Add(2)
		done, cancel := context.WithCancel(context.Background())
		cancel()
		c.Run(done) // adds the counts to Redis and returns
		if time.Now().Unix() == at.Unix() {
			break
		}
		prefix += "again:" // the second turned while counting: count afresh in a new one
	}
	s := &listStock{list: []*pb.Commodity{
		{Id: 3, Name: "新品", Count: 10, Sale: 7, Left: 2, StartTime: 1000, EndTime: 2000},
		{Id: 2, Name: "b", Count: 5, Sale: 5, Left: 0},
		{Id: 1, Name: "c", Count: 1, Sale: 0, Left: 1},
	}}
	orders := &fakeOrders{audits{fail: map[int64]bool{2: true}}}
	payments := &fakePayments{audits{refuse: map[int64]bool{1: true}}}
	h := NewAdmin(s, adminKey, 4096, Admin{Orders: orders, Payments: payments, Redis: rdb, TurnedPrefix: prefix})
	clk := &clock{t: time.Unix(at.Unix()+1, 250e6)} // within the next second
	h.now = clk.now
	rep := getStats(t, h.Routes())

	if !rep.Success || rep.ServerMs != clk.now().UnixMilli() || len(rep.Commodities) != 3 {
		t.Fatalf("stats %+v; want success, serverMs %d and 3 commodities", rep, clk.now().UnixMilli())
	}
	if req := s.lastReq.Load(); !req.Newest || req.Limit != 50 || req.Offset != 0 || req.Current {
		t.Errorf("listed %v; want the newest 50", req)
	}
	keys := []string{"id", "name", "count", "sold", "left", "startTime", "endTime", "orders", "pending", "paid", "unpaid", "expired", "turnedPerSec"}
	for _, c := range rep.Commodities {
		if len(c) != len(keys) {
			t.Errorf("commodity %v; want exactly the keys %v", c, keys)
		}
	}
	// -1 stands for null.
	want := []struct {
		name                                                                                       string
		id, count, sold, left, start, end, orders, pending, paid, unpaid, expired, turnedPerSecond float64
	}{
		{"新品", 3, 10, 7, 2, 1000, 2000, 33, 99, 15, 99, 3, 4},
		{"b", 2, 5, 5, 0, 0, 0, -1, -1, 10, 99, 2, 1},  // order-srv failed for 2: its orders are null
		{"c", 1, 1, 0, 1, 0, 0, 11, 99, -1, -1, -1, 0}, // payment-srv refused for 1: its payments' figures null
	}
	for i, w := range want {
		c := rep.Commodities[i]
		got := []float64{num(t, c, "id"), num(t, c, "count"), num(t, c, "sold"), num(t, c, "left"), num(t, c, "startTime"),
			num(t, c, "endTime"), num(t, c, "orders"), num(t, c, "pending"), num(t, c, "paid"), num(t, c, "unpaid"),
			num(t, c, "expired"), num(t, c, "turnedPerSec")}
		exp := []float64{w.id, w.count, w.sold, w.left, w.start, w.end, w.orders, w.pending, w.paid, w.unpaid, w.expired, w.turnedPerSecond}
		if fmt.Sprint(got) != fmt.Sprint(exp) || c["name"] != w.name {
			t.Errorf("commodity %d: %v %v; want %q %v", i, c["name"], got, w.name, exp)
		}
	}
	for _, id := range []int64{1, 2, 3} {
		if orders.count(id) != 1 || payments.count(id) != 1 {
			t.Errorf("commodity %d: %d order audits, %d payment audits; want one each", id, orders.count(id), payments.count(id))
		}
	}
}

// Redis down, or nothing to read figures from: those figures are null, the rest is there.
func TestStatsWithoutFigures(t *testing.T) {
	t.Parallel()
	down := redis.NewClient(&redis.Options{Addr: testutil.ClosedAddr(t), MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	defer down.Close()
	s := &listStock{list: []*pb.Commodity{{Id: 4, Name: "d", Count: 3, Sale: 1, Left: 2}}}
	for _, c := range []struct {
		name  string
		admin Admin
		// orders, paid, turned: -1 for null
		want [3]float64
	}{
		{"Redis down", Admin{Orders: &fakeOrders{}, Payments: &fakePayments{}, Redis: down, TurnedPrefix: "x:"}, [3]float64{44, 20, -1}},
		{"no other services", Admin{}, [3]float64{-1, -1, -1}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rep := getStats(t, NewAdmin(s, adminKey, 4096, c.admin).Routes())
			if len(rep.Commodities) != 1 {
				t.Fatalf("stats %+v; want one commodity", rep)
			}
			cm := rep.Commodities[0]
			got := [3]float64{num(t, cm, "orders"), num(t, cm, "paid"), num(t, cm, "turnedPerSec")}
			if got != c.want || num(t, cm, "sold") != 1 || num(t, cm, "left") != 2 {
				t.Errorf("figures %v, sold %v, left %v; want %v, 1, 2", got, cm["sold"], cm["left"], c.want)
			}
		})
	}
}

// The list failing fails the answer: 503 busy, as every other route answers a failed RPC.
func TestStatsListFails(t *testing.T) {
	t.Parallel()
	orders := &fakeOrders{}
	h := NewAdmin(&listStock{err: merrors.InternalServerError("stock", "storage unavailable")}, adminKey, 4096, Admin{Orders: orders}).Routes()
	w := serve(h, adminReq{method: "GET", target: "/admin/stats", key: adminKey})
	m := httpapitest.CheckReply(t, w)
	if e, _ := m["error"].(map[string]any); w.Code != 503 || e["reason"] != "BUSY" {
		t.Errorf("list failed: %d %v; want 503 BUSY", w.Code, m)
	}
	if _, has := m["commodities"]; has {
		t.Errorf("a failed answer with commodities: %v", m)
	}
}

// One stats answer serves every caller for StatsTTL: callers within it, and callers that
// arrive together, cost one list and one Audit per commodity.
func TestStatsCache(t *testing.T) {
	t.Parallel()
	s := &listStock{list: []*pb.Commodity{{Id: 5, Name: "e", Count: 9, Sale: 1, Left: 8}, {Id: 6, Name: "f", Count: 1}}}
	orders, payments := &fakeOrders{}, &fakePayments{}
	h := NewAdmin(s, adminKey, 4096, Admin{Orders: orders, Payments: payments})
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	h.now = clk.now
	routes := h.Routes()
	calls := func() [5]int {
		return [5]int{int(s.lists.Load()), orders.count(5), orders.count(6), payments.count(5), payments.count(6)}
	}

	first := getStats(t, routes)
	clk.add(StatsTTL - time.Millisecond)
	second := getStats(t, routes)
	if got := calls(); got != [5]int{1, 1, 1, 1, 1} {
		t.Errorf("two calls within %v: lists and audits %v; want one each", StatsTTL, got)
	}
	if second.ServerMs != first.ServerMs {
		t.Errorf("the second call's serverMs %d; want the first answer's %d", second.ServerMs, first.ServerMs)
	}
	clk.add(time.Millisecond)
	third := getStats(t, routes)
	if got := calls(); got != [5]int{2, 2, 2, 2, 2} {
		t.Errorf("a call after %v: lists and audits %v; want two each", StatsTTL, got)
	}
	if third.ServerMs != clk.now().UnixMilli() {
		t.Errorf("a fresh answer's serverMs %d; want %d", third.ServerMs, clk.now().UnixMilli())
	}
	// A commodity created is in the next answer, however fresh the kept one.
	if w := serve(routes, adminReq{method: "POST", target: "/stock/create", key: adminKey, body: `{"name":"g","count":1}`}); w.Code != 200 {
		t.Fatalf("create: %d", w.Code)
	}
	getStats(t, routes)
	if n := s.lists.Load(); n != 3 {
		t.Errorf("stats after a create listed %d times in all; want 3 (the kept answer dropped)", n)
	}

	// Callers that arrive while an answer is being made wait for it.
	clk.add(StatsTTL)
	s.gate = make(chan struct{})
	const n = 20
	var wg sync.WaitGroup
	codes := make([]int, n)
	bodies := make([][]byte, n)
	for i := range n {
		wg.Go(func() {
			w := serve(routes, adminReq{method: "GET", target: "/admin/stats", key: adminKey})
			codes[i], bodies[i] = w.Code, w.Body.Bytes()
		})
	}
	testutil.Eventually(t, 5*time.Second, "the first caller lists", func() bool { return s.lists.Load() == 4 })
	time.Sleep(50 * time.Millisecond) // the others reach the flight (or would start their own)
	close(s.gate)
	wg.Wait()
	if got := calls(); got != [5]int{4, 4, 4, 4, 4} {
		t.Errorf("%d callers at once: lists and audits %v; want one more each", n, got)
	}
	for i := range n {
		if codes[i] != 200 || !bytes.Equal(bodies[i], bodies[0]) {
			t.Errorf("caller %d: %d %s; want the same answer as caller 0 (%s)", i, codes[i], bodies[i], bodies[0])
		}
	}
}

// A failed list is kept for StatsTTL too: pages polling a stock-srv that is down cost it
// one call a second.
func TestStatsCacheKeepsFailures(t *testing.T) {
	t.Parallel()
	s := &listStock{err: errors.New("service not found")}
	h := New(s, adminKey, 4096)
	clk := &clock{t: time.Unix(1_800_000_000, 0)}
	h.now = clk.now
	routes := h.Routes()
	for range 3 {
		if w := serve(routes, adminReq{method: "GET", target: "/admin/stats", key: adminKey}); w.Code != 503 {
			t.Fatalf("stats with stock-srv down: %d; want 503", w.Code)
		}
	}
	if n := s.lists.Load(); n != 1 {
		t.Errorf("3 calls within %v made %d lists; want 1", StatsTTL, n)
	}
	s.err = nil
	clk.add(StatsTTL)
	if w := serve(routes, adminReq{method: "GET", target: "/admin/stats", key: adminKey}); w.Code != 200 || s.lists.Load() != 2 {
		t.Errorf("after %v with stock-srv back: %d, %d lists; want 200 and a new list", StatsTTL, w.Code, s.lists.Load())
	}
}

func TestAdminPage(t *testing.T) {
	t.Parallel()
	h := New(&listStock{}, adminKey, 4096).Routes()
	files := map[string]string{"/admin": "text/html", "/admin/app.js": "text/javascript", "/admin/app.css": "text/css"}
	got := map[string]string{}
	for path, typ := range files {
		w := serve(h, adminReq{method: "GET", target: path})
		if w.Code != 200 || !strings.HasPrefix(w.Header().Get("Content-Type"), typ) {
			t.Fatalf("GET %s: %d %q; want 200 %s", path, w.Code, w.Header().Get("Content-Type"), typ)
		}
		csp := w.Header().Get("Content-Security-Policy")
		for _, d := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("GET %s: CSP %q lacks %q", path, csp, d)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") || strings.Contains(csp, "*") {
			t.Errorf("GET %s: CSP %q allows more than this origin", path, csp)
		}
		for k, v := range map[string]string{"X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"} {
			if w.Header().Get(k) != v {
				t.Errorf("GET %s: %s %q; want %q", path, k, w.Header().Get(k), v)
			}
		}
		got[path] = w.Body.String()
	}
	html, js := got["/admin"], got["/admin/app.js"]
	// The ids the browser tests use.
	for _, id := range []string{"admin-key", "signin", "c-name", "c-count", "c-start", "c-end", "create",
		"err-name", "err-count", "err-start", "err-end", "create-msg", "rows", "lang", "signout"} {
		if !strings.Contains(html, `id="`+id+`"`) {
			t.Errorf("the page has no element #%s", id)
		}
	}
	for _, in := range []string{`id="admin-key" name="key" type="password"`, `id="c-start" name="startTime" type="datetime-local" step="1"`,
		`id="c-end" name="endTime" type="datetime-local" step="1"`} {
		if !strings.Contains(html, in) {
			t.Errorf("the page lacks %s", in)
		}
	}
	// Every input has its label.
	for _, m := range regexp.MustCompile(`<input id="([^"]+)"`).FindAllStringSubmatch(html, -1) {
		if !strings.Contains(html, `<label for="`+m[1]+`"`) {
			t.Errorf("input #%s has no label", m[1])
		}
	}
	// Nothing inline (the policy would block it) and nothing from elsewhere.
	if regexp.MustCompile(`<script>|<style|\sstyle="|\son[a-z]+="|https?://`).MatchString(html) {
		t.Error("the page has inline script or style, or an external address")
	}
	if strings.Contains(js, "innerHTML") || strings.Contains(js, "outerHTML") || strings.Contains(js, "insertAdjacentHTML") {
		t.Error("the script writes HTML; it must set text only")
	}
	for _, s := range []string{"'/admin/stats'", "'/admin/signin'", "'/stock/create'", "已创建 #", "created #"} {
		if !strings.Contains(js, s) {
			t.Errorf("the script lacks %s", s)
		}
	}
	// Only the exact paths are the page.
	for _, c := range []struct {
		method, path string
		want         int
	}{{"GET", "/admin/", 404}, {"GET", "/admin/index.html", 404}, {"GET", "/admin/x", 404}, {"POST", "/admin", 405}, {"GET", "/admin/signin", 405}} {
		w := serve(h, adminReq{method: c.method, target: c.path})
		httpapitest.CheckReply(t, w)
		if w.Code != c.want {
			t.Errorf("%s %s: %d; want %d", c.method, c.path, w.Code, c.want)
		}
	}
}
