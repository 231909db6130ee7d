package handler_test

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/auth"
	"secbuy/basic/buyer"
	"secbuy/basic/testutil"
	"secbuy/basic/turned"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-web/handler"
	"secbuy/proto/outcome"
	stockpb "secbuy/stock-srv/proto/stock"
)

// fakeStock answers the page's reads of the stock.
type fakeStock struct {
	stockpb.StockService
	list  []*stockpb.Commodity
	err   error
	lists []*stockpb.ListRequest
}

func (f *fakeStock) ListCommodities(_ context.Context, in *stockpb.ListRequest, _ ...client.CallOption) (*stockpb.ListResponse, error) {
	f.lists = append(f.lists, in)
	return &stockpb.ListResponse{Success: true, Commodities: f.list}, f.err
}

func (f *fakeStock) GetCommodity(_ context.Context, in *stockpb.Request, _ ...client.CallOption) (*stockpb.Response, error) {
	for _, c := range f.list {
		if c.Id == in.Id {
			return &stockpb.Response{Success: true, Commodity: c}, f.err
		}
	}
	return &stockpb.Response{Error: outcome.Refuse(outcome.Reason_COMMODITY_NOT_FOUND)}, f.err
}

func pagesMux(stock stockpb.StockService, dev bool) http.Handler {
	p := handler.NewPages(stock, handler.PageConfig{AuthSecret: secret, DevLogin: dev, MaxBody: 4096, RPCTimeout: time.Second})
	return handler.New(&fakeOrders{}, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes(p.Endpoints()...)
}

func TestPageFiles(t *testing.T) {
	t.Parallel()
	h := pagesMux(&fakeStock{}, false)
	for _, tc := range []struct{ path, typ, has string }{
		{"/", "text/html; charset=utf-8", `<script src="/page/app.js"`},
		{"/c/12", "text/html; charset=utf-8", `<script src="/page/app.js"`},
		{"/page/app.js", "text/javascript; charset=utf-8", `"/order/sell"`},
		{"/page/app.css", "text/css; charset=utf-8", `.buy`},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
		if w.Code != 200 || w.Header().Get("Content-Type") != tc.typ || !strings.Contains(w.Body.String(), tc.has) {
			t.Errorf("GET %s = %d %q, body has %q: %v", tc.path, w.Code, w.Header().Get("Content-Type"), tc.has, strings.Contains(w.Body.String(), tc.has))
		}
		csp := w.Header().Get("Content-Security-Policy")
		if !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("GET %s: Content-Security-Policy %q", tc.path, csp)
		}
	}
	// Not pages: JSON refusals, as for any other path.
	for _, tc := range []struct {
		method, path string
		status       int
	}{
		{"GET", "/c/abc", 400}, {"GET", "/c/0", 400}, {"GET", "/page/nothing.js", 404}, {"POST", "/", 405},
		{"POST", "/page/devtoken", 404}, // development login off
	} {
		w, body := do(t, h, request{tc.method, tc.path, `{"name":"x"}`, nil})
		if w.Code != tc.status || body["success"] != false {
			t.Errorf("%s %s = %d %v; want %d", tc.method, tc.path, w.Code, body, tc.status)
		}
	}
}

func TestPageCommodities(t *testing.T) {
	t.Parallel()
	stock := &fakeStock{list: []*stockpb.Commodity{{Id: 3, Name: "鞋", Count: 5, Left: 2, StartTime: 100, EndTime: 200, Sale: 3}}}
	h := pagesMux(stock, true)
	before := time.Now().UnixMilli()
	w, body := do(t, h, request{"GET", "/page/commodities", "", map[string]string{"Accept-Language": "zh-CN,zh;q=0.9"}})
	if w.Code != 200 {
		t.Fatalf("status %d %v", w.Code, body)
	}
	if ms := int64(body["serverMs"].(float64)); ms < before || ms > time.Now().UnixMilli() {
		t.Errorf("serverMs %d is not the server's clock", ms)
	}
	cs := body["commodities"].([]any)
	c := cs[0].(map[string]any)
	if len(cs) != 1 || c["id"] != 3.0 || c["left"] != 2.0 || c["name"] != "鞋" || c["startTime"] != 100.0 {
		t.Errorf("commodities %v", cs)
	}
	if body["lang"] != "zh" || body["devLogin"] != true {
		t.Errorf("lang %v, devLogin %v", body["lang"], body["devLogin"])
	}
	if w := body["words"].(map[string]any)["SOLD_OUT"].([]any); w[0] != "sold out" || w[1] != "已售罄" {
		t.Errorf("the words of SOLD_OUT: %v", w)
	}
	if q := stock.lists[0]; !q.Current || !q.Newest {
		t.Errorf("the page asked %v; want the current commodities, newest first", q)
	}
	// Every page's first read within listFresh shares one: the stock service is asked once.
	for range 5 {
		do(t, h, request{"GET", "/page/commodities", "", nil})
	}
	if len(stock.lists) != 1 {
		t.Errorf("6 reads asked stock-srv %d times, want once", len(stock.lists))
	}
	// One commodity (/c/{id}), ended or not; an unknown one is 404.
	if w, body := do(t, h, request{"GET", "/page/commodities?id=3", "", nil}); w.Code != 200 || len(body["commodities"].([]any)) != 1 {
		t.Errorf("?id=3: %d %v", w.Code, body)
	}
	for _, tc := range []struct {
		path   string
		status int
	}{{"/page/commodities?id=4", 404}, {"/page/commodities?id=-1", 400}} {
		if w, _ := do(t, h, request{"GET", tc.path, "", nil}); w.Code != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, w.Code, tc.status)
		}
	}
	// stock-srv away: busy, never a 500.
	down := pagesMux(&fakeStock{err: merrors.InternalServerError("go.micro.client", "connection refused")}, true)
	if w, body := do(t, down, request{"GET", "/page/commodities", "", nil}); w.Code != 503 {
		t.Errorf("stock-srv down: %d %v", w.Code, body)
	}
}

func TestDevToken(t *testing.T) {
	t.Parallel()
	h := pagesMux(&fakeStock{}, true)
	users := map[string]float64{}
	for _, name := range []string{"alice", "bob", "alice", "42"} {
		w, body := do(t, h, request{"POST", "/page/devtoken", `{"name":"` + name + `"}`, nil})
		if w.Code != 200 {
			t.Fatalf("%s: %d %v", name, w.Code, body)
		}
		sub, err := auth.Verify(secret, body["token"].(string))
		id := buyer.ID(sub)
		if err != nil || float64(id) != body["userId"].(float64) || body["buyer"] != sub {
			t.Fatalf("%s: token for %q (%v), reply says %v, %v", name, sub, err, body["userId"], body["buyer"])
		}
		if old, ok := users[name]; ok && old != body["userId"] {
			t.Errorf("%s got user %v, then %v", name, old, body["userId"])
		}
		users[name] = body["userId"].(float64)
		if id <= 0 || id >= 1<<53 {
			t.Errorf("%s: user %d is not a positive id a page reads exactly", name, id)
		}
	}
	if users["42"] != 42 || users["alice"] == users["bob"] {
		t.Errorf("users %v", users)
	}
	for _, body := range []string{`{"name":""}`, `{"name":"a b"}`, `{"name":"` + strings.Repeat("x", 33) + `"}`, `{"name":"x","id":1}`, `nope`} {
		if w, got := do(t, h, request{"POST", "/page/devtoken", body, nil}); w.Code != 400 {
			t.Errorf("%s: %d %v, want 400", body, w.Code, got)
		}
	}
}

// listOrders is fakeOrders with ListOrders.
type listOrders struct {
	fakeOrders
	in  *pb.ListRequest
	rsp *pb.ListResponse
}

func (f *listOrders) ListOrders(_ context.Context, in *pb.ListRequest, _ ...client.CallOption) (*pb.ListResponse, error) {
	f.in = in
	return f.rsp, nil
}

func TestListOrders(t *testing.T) {
	t.Parallel()
	f := &listOrders{rsp: &pb.ListResponse{Success: true, More: true, Orders: []*pb.Order{pbOrder("created", 0)}}}
	h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes()
	tok := testutil.Bearer(t, secret, 42, time.Hour)
	w, body := do(t, h, request{"GET", "/order/list?offset=10&limit=5", "", map[string]string{"Authorization": tok}})
	if w.Code != 200 || f.in.UserId != 42 || f.in.Offset != 10 || f.in.Limit != 5 {
		t.Fatalf("%d %v; order-srv asked %v", w.Code, body, f.in)
	}
	page := body["page"].(map[string]any)
	if page["more"] != true || len(page["orders"].([]any)) != 1 || page["orders"].([]any)[0].(map[string]any)["state"] != "created" {
		t.Errorf("page %v", page)
	}
	for _, tc := range []struct {
		path, token string
		status      int
	}{
		{"/order/list", "", 401}, {"/order/list?limit=101", tok, 400}, {"/order/list?offset=-1", tok, 400}, {"/order/list?limit=x", tok, 400},
	} {
		f.in = nil
		w, body := do(t, h, request{"GET", tc.path, "", map[string]string{"Authorization": tc.token}})
		if w.Code != tc.status || f.in != nil {
			t.Errorf("%s: %d %v (order-srv asked %v); want %d without a call", tc.path, w.Code, body, f.in, tc.status)
		}
	}
}

// TestTurnedAway counts the presses refused for good, once each, in the real Redis: a
// sold-out answer from order-srv and from memory, not started, ended, already bought;
// not a success, a "busy" (the buyer resends it) or bad input.
func TestTurnedAway(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	prefix := fmt.Sprintf("secbuy-test:turned:%d:", time.Now().UnixNano())
	counter := turned.NewCounter(rdb, prefix)
	f := &fakeOrders{}
	f.setHolders(&pb.HoldersResponse{Success: true, SoldOut: true, ValidForMs: 60000, Users: []int64{42}})
	hd := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second)
	defer hd.Close()
	hd.CountTurned(counter)
	h := hd.Routes()
	tok := testutil.Bearer(t, secret, 7, time.Minute)
	buy := func(id string, rsp *pb.Response, err error) int {
		f.mu.Lock()
		f.rsp, f.err = rsp, err
		f.mu.Unlock()
		w, _ := do(t, h, request{"POST", "/order/sell", `{"id":` + id + `}`, map[string]string{"Authorization": tok}})
		return w.Code
	}
	from := time.Now()
	for _, tc := range []struct {
		id     string
		rsp    *pb.Response
		err    error
		status int
	}{
		{"3", &pb.Response{Success: true, Order: &pb.Order{Id: 1, Sid: 3, UserId: 7, State: "created"}}, nil, 200},
		{"3", &pb.Response{Error: outcome.Refuse(outcome.Reason_ALREADY_BOUGHT)}, nil, 409},
		{"4", &pb.Response{Error: outcome.Refuse(outcome.Reason_NOT_STARTED)}, nil, 409},
		{"4", &pb.Response{Error: outcome.Refuse(outcome.Reason_ENDED)}, nil, 409},
		{"4", nil, merrors.InternalServerError("go.micro.client", "connection refused"), 503},
		{"-4", nil, nil, 400},
		{"5", &pb.Response{Error: outcome.Refuse(outcome.Reason_SOLD_OUT)}, nil, 409},
	} {
		if got := buy(tc.id, tc.rsp, tc.err); got != tc.status {
			t.Fatalf("press for %s: %d, want %d", tc.id, got, tc.status)
		}
	}
	// Sold out is now known in memory: a press answered from it is counted too.
	testutil.Eventually(t, 5*time.Second, "the holders of commodity 5", func() bool { return hd.KnowsSoldOut(5) })
	if got := buy("5", nil, nil); got != 409 {
		t.Fatalf("a press answered from memory: %d", got)
	}
	to := time.Now()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	counter.Run(ctx) // a stopped counter sends what it holds
	sum := map[int64]int64{}
	for sec := from.Truncate(time.Second); !sec.After(to); sec = sec.Add(time.Second) {
		got, err := turned.PerSecond(context.Background(), rdb, prefix, []int64{3, 4, 5}, sec.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		for id, n := range got {
			sum[id] += n
		}
	}
	if sum[3] != 1 || sum[4] != 2 || sum[5] != 2 {
		t.Errorf("turned away %v; want 3:1 (already bought), 4:2 (not started, ended), 5:2 (sold out twice)", sum)
	}
}

// TestStreamsEndWhenStopping: a stopping instance ends its open streams at once (they
// would hold its drain for their whole life), and refuses new ones with "busy"; while it
// runs, a stream carries the feed's events, with no CORS wildcard.
func TestStreamsEndWhenStopping(t *testing.T) {
	stock := &fakeStock{list: []*stockpb.Commodity{{Id: 3, Name: "x", Count: 5, Left: 4}}}
	p := handler.NewPages(stock, handler.PageConfig{AuthSecret: secret, MaxBody: 4096, RPCTimeout: time.Second})
	srv := httptest.NewServer(handler.New(&fakeOrders{}, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes(p.Endpoints()...))
	defer srv.Close()
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { p.Run(ctx); close(ran) }()

	rsp, err := http.Get(srv.URL + "/page/stream")
	if err != nil {
		t.Fatal(err)
	}
	defer rsp.Body.Close()
	if rsp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("the stream allows origin %q", rsp.Header.Get("Access-Control-Allow-Origin"))
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(rsp.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	deadline := time.After(5 * time.Second)
	for got := false; !got; {
		select {
		case l := <-lines:
			got = strings.HasPrefix(l, `data: {"serverMs":`) && strings.HasSuffix(l, `,"left":{"3":4}}`)
		case <-deadline:
			t.Fatal("no stock event within 5 s")
		}
	}
	stop()
	for open := true; open; {
		select {
		case _, open = <-lines:
		case <-time.After(3 * time.Second):
			t.Fatal("the stream stayed open after the instance stopped")
		}
	}
	<-ran
	if w, body := do(t, srv.Config.Handler, request{"GET", "/page/stream", "", nil}); w.Code != 503 || w.Header().Get("Retry-After") == "" {
		t.Errorf("a stream asked of a stopped instance: %d %v; want 503 with Retry-After", w.Code, body)
	}
}
