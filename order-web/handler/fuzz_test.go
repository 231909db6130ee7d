package handler_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v6/client"

	"secbuy/basic/auth"
	"secbuy/basic/httpapi/httpapitest"
	"secbuy/basic/ticket"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-web/handler"
	"secbuy/proto/outcome"
	stockpb "secbuy/stock-srv/proto/stock"
)

// The two buyers of the fuzz tests; each owns one order, whose name only they may see.
const userA, userB = 1001, 2002

// ordersDB is a fake OrderService with the real one's rules: an order is shown only to
// its owner. It records what it was asked, for the fuzzer to check.
type ordersDB struct {
	pb.OrderService
	mu    sync.Mutex
	calls []any
}

func secretOf(user int64) string { return "private-of-" + strconv.FormatInt(user, 10) }

func (d *ordersDB) record(in any) {
	d.mu.Lock()
	d.calls = append(d.calls, in)
	d.mu.Unlock()
}

func (d *ordersDB) take() []any {
	d.mu.Lock()
	defer d.mu.Unlock()
	c := d.calls
	d.calls = nil
	return c
}

func (d *ordersDB) CreateOrders(_ context.Context, in *pb.CreateBatchRequest, _ ...client.CallOption) (*pb.CreateBatchResponse, error) {
	out := &pb.CreateBatchResponse{}
	for _, it := range in.Items {
		d.record(it)
		switch {
		case it.LookupOnly:
			out.Items = append(out.Items, &pb.Response{Error: outcome.Refuse(outcome.Reason_ORDER_NOT_FOUND)})
		case it.Sid%5 == 0:
			out.Items = append(out.Items, &pb.Response{Error: outcome.Refuse(outcome.Reason_SOLD_OUT),
				Order: &pb.Order{Id: 7, Sid: it.Sid, UserId: it.UserId, State: "failed", Failure: outcome.Reason_SOLD_OUT}})
		default:
			out.Items = append(out.Items, &pb.Response{Success: true,
				Order: &pb.Order{Id: it.UserId, Sid: it.Sid, UserId: it.UserId, Name: secretOf(it.UserId), State: "created"}})
		}
	}
	return out, nil
}

// Holders says no commodity is sold out: every press is sent on, for the checks to see.
func (d *ordersDB) Holders(context.Context, *pb.HoldersRequest, ...client.CallOption) (*pb.HoldersResponse, error) {
	return &pb.HoldersResponse{Success: true}, nil
}

func (d *ordersDB) GetOrder(_ context.Context, in *pb.GetRequest, _ ...client.CallOption) (*pb.Response, error) {
	d.record(in)
	switch in.Id {
	case userA, userB: // order id = its owner's id
		if in.Id != in.UserId {
			return &pb.Response{Error: outcome.Refuse(outcome.Reason_NOT_YOURS)}, nil
		}
		return &pb.Response{Success: true, Order: &pb.Order{Id: in.Id, Sid: 3, UserId: in.Id, Name: secretOf(in.Id), State: "created"}}, nil
	}
	return &pb.Response{Error: outcome.Refuse(outcome.Reason_ORDER_NOT_FOUND)}, nil
}

// ListOrders lists the caller's own order (order id = its owner's id).
func (d *ordersDB) ListOrders(_ context.Context, in *pb.ListRequest, _ ...client.CallOption) (*pb.ListResponse, error) {
	d.record(in)
	return &pb.ListResponse{Success: true, Orders: []*pb.Order{{Id: in.UserId, Sid: 3, UserId: in.UserId, Name: secretOf(in.UserId), State: "created"}}}, nil
}

// fuzzTokens are the Authorization headers the fuzzer picks from by number: none, user A,
// user B, and bad ones. The user of each (0: not a valid token).
func fuzzTokens(f *testing.F, secret string) (headers []string, users []int64) {
	mint := func(s string, user int64, ttl time.Duration) string {
		tok, err := auth.Mint(s, user, ttl)
		if err != nil {
			f.Fatal(err)
		}
		return tok
	}
	a := mint(secret, userA, time.Hour)
	return []string{"", "Bearer " + a, "Bearer " + mint(secret, userB, time.Hour),
			"Bearer " + mint("wrong", userA, time.Hour), "Bearer " + mint(secret, userA, -time.Hour),
			a, "Bearer " + a + "x", "bearer " + a, "Bearer  " + a + " "},
		[]int64{0, userA, userB, 0, 0, 0, 0, 0, userA}
}

var keyRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{1,64}$`)

// FuzzOrderRoutes drives order-web's whole HTTP surface with fuzzed method, target, body,
// token and Idempotency-Key. Every reply is a well-formed JSON reply (see
// httpapitest.CheckReply); order-srv is only called for a valid buyer with a valid id, in
// that buyer's name, and never for commodity 7, which requires a ticket (one the fuzzer
// cannot forge); no reply shows another buyer's order.
func FuzzOrderRoutes(f *testing.F) {
	for _, s := range []struct {
		method, target, body string
		who                  uint8
		key                  string
	}{
		{"POST", "/order/sell", `{"id":3}`, 1, ""},
		{"POST", "/order/sell", `{"id":3}`, 2, "press-1"},
		{"POST", "/order/sell", `{"id":10}`, 1, ""},
		{"POST", "/order/sell", `{"id":10}`, 1, "k"},
		{"POST", "/order/sell", `{"id":3}`, 0, ""},
		{"POST", "/order/sell", `{"id":3}`, 3, ""},
		{"POST", "/order/sell", `{"id":3}`, 4, ""},
		{"POST", "/order/sell", `{"id":3}`, 8, "a b"},
		{"POST", "/order/sell", `{"id":-3}`, 1, ""},
		{"POST", "/order/sell", `{"id":"3"}`, 1, ""},
		{"POST", "/order/sell", `{"id":3,"userId":2002}`, 1, ""},
		{"POST", "/order/sell", `{"id":3}{}`, 1, ""},
		{"POST", "/order/sell", strings.Repeat(`{"id":3}`, 600), 1, ""},
		{"POST", "/order/sell?id=4", ``, 1, ""},
		{"GET", "/order/sell", ``, 1, ""},
		{"GET", "/order/get?id=1001", ``, 1, ""},
		{"GET", "/order/get?id=2002", ``, 1, ""},
		{"GET", "/order/get?id=2002", ``, 2, ""},
		{"GET", "/order/get?id=1001&id=2002", ``, 1, ""},
		{"GET", "/order/get?id=+1001", ``, 1, ""},
		{"GET", "/order/get?id=0x3e9", ``, 1, ""},
		{"GET", "/order/get?id=%00", ``, 1, ""},
		{"GET", "/order/get", ``, 0, ""},
		{"HEAD", "/order/get?id=1", ``, 1, ""},
		{"CONNECT", "/order/get?id=1", ``, 1, ""},
		{"GET", "/order//get?id=1", ``, 1, ""},
		{"GET", "/order/../order/get?id=1", ``, 1, ""},
		{"GET", "/order/get/", ``, 1, ""},
		{"GET", "/order/list", ``, 1, ""},
		{"GET", "/order/list?offset=1&limit=100", ``, 2, ""},
		{"GET", "/order/list?limit=101", ``, 1, ""},
		{"GET", "/order/list?offset=-1", ``, 1, ""},
		{"GET", "/order/list?limit=99999999999999999999", ``, 1, ""},
		{"POST", "/order/list", `{}`, 1, ""},
		{"GET", "/", ``, 1, ""},
		{"GET", "/debug/pprof/", ``, 1, ""},
		{"GET", "/order/ticket?id=7", ``, 1, ""},
		{"GET", "/order/ticket?id=7", ``, 0, ""},
		{"GET", "/order/ticket?id=99", ``, 1, ""},
		{"GET", "/order/ticket?id=7&id=3", ``, 1, ""},
		{"POST", "/order/ticket?id=7", ``, 1, ""},
		{"POST", "/order/sell", `{"id":7}`, 1, ""},
		{"POST", "/order/sell", `{"id":7,"ticket":"1.7.99999999999999.0.AAAA"}`, 1, ""},
		{"POST", "/order/sell", `{"id":7,"ticket":"1.7.99999999999999.0.AAAA","nonce":"1"}`, 2, "k"},
		{"POST", "/order/sell", `{"id":7,"ticket":null}`, 1, ""},
		{"POST", "/order/sell", `{"id":3,"ticket":"x","nonce":7}`, 1, ""},
		{"POST", "/order/sell", `{"id":3,"ticket":"` + strings.Repeat("t", 3000) + `"}`, 1, ""},
	} {
		f.Add(s.method, s.target, []byte(s.body), s.who, s.key)
	}
	for _, b := range httpapitest.HostileBodies("id") {
		f.Add("POST", "/order/sell", b, uint8(1), "")
	}
	const secret = "fuzz-secret"
	headers, users := fuzzTokens(f, secret)
	db := &ordersDB{}
	h := handler.New(db, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second)
	f.Cleanup(h.Close)
	issuer, err := ticket.New(secret, 10*time.Second, 0)
	if err != nil {
		f.Fatal(err)
	}
	h.Tickets(&fakeStock{list: []*stockpb.Commodity{{Id: 7, Count: 5, TicketRequired: true}, {Id: 3, Count: 5}}}, issuer, time.Second)
	routes := h.Routes()
	f.Fuzz(func(t *testing.T, method, target string, body []byte, who uint8, key string) {
		req, err := http.NewRequest(method, "http://order.test"+target, bytes.NewReader(body))
		if err != nil || !strings.HasPrefix(target, "/") {
			return // not a request an HTTP server would hand to a handler
		}
		req.RemoteAddr = "192.0.2.1:1234"
		i := int(who) % len(headers)
		user := users[i]
		if headers[i] != "" {
			req.Header.Set("Authorization", headers[i])
		}
		if key != "" {
			req.Header.Set("Idempotency-Key", key)
		}
		w := httptest.NewRecorder()
		routes.ServeHTTP(w, req)
		reply := httpapitest.CheckReply(t, w)
		httpapitest.NoServerError(t, w)

		for _, c := range db.take() {
			if user == 0 {
				t.Fatalf("order-srv called without a valid token: %v", c)
			}
			switch c := c.(type) {
			case *pb.CreateRequest:
				var b struct{ ID int64 }
				if req.Method != "POST" || req.URL.Path != "/order/sell" || json.Unmarshal(body, &b) != nil || b.ID != c.Sid {
					t.Fatalf("CreateOrder %v from %s %s %q", c, method, target, body)
				}
				k, ok := strings.CutPrefix(c.RequestId, strconv.FormatInt(user, 10)+":")
				if c.Sid == 7 {
					t.Fatalf("a press for commodity 7 without a valid ticket reached order-srv: %s %q", target, body)
				}
				if c.Sid <= 0 || c.UserId != user || !ok || !keyRE.MatchString(k) || (key != "" && k != key) {
					t.Fatalf("CreateOrder %v for user %d, key %q", c, user, key)
				}
			case *pb.GetRequest:
				if req.Method != "GET" || req.URL.Path != "/order/get" || c.Id <= 0 || c.UserId != user ||
					!sameID(req.URL.Query().Get("id"), c.Id) {
					t.Fatalf("GetOrder %v from %s %s, user %d", c, method, target, user)
				}
			case *pb.ListRequest:
				if req.Method != "GET" || req.URL.Path != "/order/list" || c.UserId != user || c.Offset < 0 || c.Limit < 0 || c.Limit > handler.MaxListLimit {
					t.Fatalf("ListOrders %v from %s %s, user %d", c, method, target, user)
				}
			default:
				t.Fatalf("unexpected call %T", c)
			}
		}
		for _, other := range []int64{userA, userB} {
			if other != user && strings.Contains(w.Body.String(), secretOf(other)) {
				t.Fatalf("user %d was shown user %d's order: %s", user, other, w.Body.String())
			}
		}
		if o, ok := reply["order"].(map[string]any); ok && fmt.Sprint(o["userId"]) != strconv.FormatInt(user, 10) {
			t.Fatalf("user %d was shown an order of user %v: %s", user, o["userId"], w.Body.String())
		}
	})
}

// sameID says whether s is a decimal form of id.
func sameID(s string, id int64) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && n == id
}
