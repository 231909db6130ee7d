package handler_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/auth"
	"secbuy/basic/testutil"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-web/handler"
	"secbuy/proto/outcome"
)

const secret = "order-web-test-secret"

// fakeOrders is an OrderService that records its calls and answers rsp, err.
type fakeOrders struct {
	pb.OrderService // Audit is not called
	mu              sync.Mutex
	creates         []*pb.CreateRequest
	gets            []*pb.GetRequest
	rsp             *pb.Response
	err             error
	// holders answers Holders (nil: not sold out); holdersCalls counts the calls.
	holders      *pb.HoldersResponse
	holdersCalls int
}

func (f *fakeOrders) Holders(_ context.Context, in *pb.HoldersRequest, _ ...client.CallOption) (*pb.HoldersResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holdersCalls++
	if f.holders == nil {
		return &pb.HoldersResponse{Success: true}, nil
	}
	return f.holders, nil
}

func (f *fakeOrders) setHolders(rsp *pb.HoldersResponse) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.holders = rsp
}

func (f *fakeOrders) holderCalls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.holdersCalls
}

func (f *fakeOrders) CreateOrder(_ context.Context, in *pb.CreateRequest, _ ...client.CallOption) (*pb.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, in)
	return f.rsp, f.err
}

// CreateOrders answers each item with CreateOrder.
func (f *fakeOrders) CreateOrders(ctx context.Context, in *pb.CreateBatchRequest, _ ...client.CallOption) (*pb.CreateBatchResponse, error) {
	out := &pb.CreateBatchResponse{}
	for _, it := range in.Items {
		r, err := f.CreateOrder(ctx, it)
		if err != nil {
			return nil, err
		}
		out.Items = append(out.Items, r)
	}
	return out, nil
}

func (f *fakeOrders) GetOrder(_ context.Context, in *pb.GetRequest, _ ...client.CallOption) (*pb.Response, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, in)
	return f.rsp, f.err
}

func (f *fakeOrders) calls() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.creates) + len(f.gets)
}

type request struct {
	method, path, body string
	headers            map[string]string
}

func do(t *testing.T, h http.Handler, r request) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest(r.method, r.path, strings.NewReader(r.body))
	for k, v := range r.headers {
		req.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	var body map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatalf("%s %s: reply %q is not JSON: %v", r.method, r.path, w.Body.String(), err)
	}
	return w, body
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	good := testutil.Bearer(t, secret, 42, time.Hour)
	authed := map[string]string{"Authorization": good}
	withKey := func(k string) map[string]string {
		return map[string]string{"Authorization": good, "Idempotency-Key": k}
	}
	huge := `{"id":1,"pad":"` + strings.Repeat("x", 10<<20) + `"}`
	tests := []struct {
		name string
		req  request
		want int
	}{
		{"malformed JSON", request{"POST", "/order/sell", `{"id":`, authed}, 400},
		{"not JSON", request{"POST", "/order/sell", `id=1`, authed}, 400},
		{"empty body", request{"POST", "/order/sell", ``, authed}, 400},
		{"string id", request{"POST", "/order/sell", `{"id":"1"}`, authed}, 400},
		{"fractional id", request{"POST", "/order/sell", `{"id":1.5}`, authed}, 400},
		{"array body", request{"POST", "/order/sell", `[1]`, authed}, 400},
		{"null body", request{"POST", "/order/sell", `null`, authed}, 400},
		{"null id", request{"POST", "/order/sell", `{"id":null}`, authed}, 400},
		{"missing id", request{"POST", "/order/sell", `{}`, authed}, 400},
		{"extra field", request{"POST", "/order/sell", `{"id":1,"count":2}`, authed}, 400},
		{"other field only", request{"POST", "/order/sell", `{"sid":1}`, authed}, 400},
		{"trailing data", request{"POST", "/order/sell", `{"id":1}{"id":2}`, authed}, 400},
		{"zero id", request{"POST", "/order/sell", `{"id":0}`, authed}, 400},
		{"negative id", request{"POST", "/order/sell", `{"id":-3}`, authed}, 400},
		{"huge id", request{"POST", "/order/sell", `{"id":99999999999999999999}`, authed}, 400},
		{"10 MB body", request{"POST", "/order/sell", huge, authed}, 413},
		{"GET sell", request{"GET", "/order/sell", ``, authed}, 405},
		{"OPTIONS sell", request{"OPTIONS", "/order/sell", ``, authed}, 405},
		{"PUT sell", request{"PUT", "/order/sell", `{"id":1}`, authed}, 405},
		{"POST get", request{"POST", "/order/get?id=1", ``, authed}, 405},
		{"unknown path", request{"GET", "/order/nothing", ``, authed}, 404},
		{"no token", request{"POST", "/order/sell", `{"id":1}`, nil}, 401},
		{"not bearer", request{"POST", "/order/sell", `{"id":1}`, map[string]string{"Authorization": "Basic eDp5"}}, 401},
		{"garbage token", request{"POST", "/order/sell", `{"id":1}`, map[string]string{"Authorization": "Bearer abc.def.ghi"}}, 401},
		{"forged token", request{"POST", "/order/sell", `{"id":1}`, map[string]string{"Authorization": testutil.Bearer(t, "other-secret", 42, time.Hour)}}, 401},
		{"expired token", request{"POST", "/order/sell", `{"id":1}`, map[string]string{"Authorization": testutil.Bearer(t, secret, 42, -time.Minute)}}, 401},
		{"get without token", request{"GET", "/order/get?id=1", ``, nil}, 401},
		{"get expired token", request{"GET", "/order/get?id=1", ``, map[string]string{"Authorization": testutil.Bearer(t, secret, 42, -time.Minute)}}, 401},
		{"empty key", request{"POST", "/order/sell", `{"id":1}`, withKey("")}, 400},
		{"key too long", request{"POST", "/order/sell", `{"id":1}`, withKey(strings.Repeat("k", 65))}, 400},
		{"key with space", request{"POST", "/order/sell", `{"id":1}`, withKey("a b")}, 400},
		{"key with slash", request{"POST", "/order/sell", `{"id":1}`, withKey("a/b")}, 400},
		{"key not ASCII", request{"POST", "/order/sell", `{"id":1}`, withKey("ключ")}, 400},
		{"get without id", request{"GET", "/order/get", ``, authed}, 400},
		{"get zero id", request{"GET", "/order/get?id=0", ``, authed}, 400},
		{"get negative id", request{"GET", "/order/get?id=-1", ``, authed}, 400},
		{"get huge id", request{"GET", "/order/get?id=99999999999999999999", ``, authed}, 400},
		{"get word id", request{"GET", "/order/get?id=abc", ``, authed}, 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeOrders{rsp: &pb.Response{Success: true}}
			w, body := do(t, handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes(), tc.req)
			if w.Code != tc.want {
				t.Errorf("status = %d; want %d (body %v)", w.Code, tc.want, body)
			}
			e, _ := body["error"].(map[string]any)
			if body["success"] != false || e == nil || e["code"] != float64(tc.want) || e["detail"] == "" {
				t.Errorf("body = %v; want success false and error code %d", body, tc.want)
			}
			if n := f.calls(); n != 0 {
				t.Errorf("order-srv called %d times; want 0", n)
			}
		})
	}
}

func TestTwoIdempotencyKeys(t *testing.T) {
	t.Parallel()
	f := &fakeOrders{rsp: &pb.Response{Success: true}}
	req := httptest.NewRequest("POST", "/order/sell", strings.NewReader(`{"id":1}`))
	req.Header.Set("Authorization", testutil.Bearer(t, secret, 42, time.Hour))
	req.Header.Add("Idempotency-Key", "a")
	req.Header.Add("Idempotency-Key", "b")
	w := httptest.NewRecorder()
	handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes().ServeHTTP(w, req)
	if w.Code != 400 || f.calls() != 0 {
		t.Errorf("two keys: status %d, calls %d; want 400, 0", w.Code, f.calls())
	}
}

func pbOrder(state string, failure outcome.Reason) *pb.Order {
	return &pb.Order{Id: 11, Sid: 7, Name: "phone", CreateTime: 1700000000, UserId: 42, RequestId: "42:k", State: state, Failure: failure}
}

func jsonOrder(state, reason string) string {
	return `{"id":11,"sid":7,"name":"phone","createTime":1700000000,"userId":42,"buyer":"42","state":"` + state + `","reason":"` + reason + `"}`
}

// replyCase is what order-srv answers (rsp, err) and what the buyer must be told.
type replyCase struct {
	name     string
	rsp      *pb.Response
	err      error
	wantCode int
	wantBody string
}

func (c replyCase) check(t *testing.T, w *httptest.ResponseRecorder, body map[string]any) {
	t.Helper()
	var want map[string]any
	if err := json.Unmarshal([]byte(c.wantBody), &want); err != nil {
		t.Fatal(err)
	}
	if w.Code != c.wantCode || !reflect.DeepEqual(body, want) {
		t.Errorf("reply = %d %s; want %d %s", w.Code, w.Body.String(), c.wantCode, c.wantBody)
	}
}

func TestOutcomes(t *testing.T) {
	t.Parallel()
	tests := []replyCase{
		{"created", &pb.Response{Success: true, Order: pbOrder("created", 0)},
			nil, 200, `{"success":true,"order":` + jsonOrder("created", "") + `}`},
		{"sold out", &pb.Response{Error: outcome.Refuse(outcome.Reason_SOLD_OUT), Order: pbOrder("failed", outcome.Reason_SOLD_OUT)},
			nil, 409, `{"success":false,"error":{"code":409,"detail":"sold out","reason":"SOLD_OUT"},"order":` + jsonOrder("failed", "sold out") + `}`},
		{"not started", &pb.Response{Error: outcome.Refuse(outcome.Reason_NOT_STARTED), Order: pbOrder("failed", outcome.Reason_NOT_STARTED)},
			nil, 409, `{"success":false,"error":{"code":409,"detail":"not started","reason":"NOT_STARTED"},"order":` + jsonOrder("failed", "not started") + `}`},
		{"ended", &pb.Response{Error: outcome.Refuse(outcome.Reason_ENDED), Order: pbOrder("failed", outcome.Reason_ENDED)},
			nil, 409, `{"success":false,"error":{"code":409,"detail":"ended","reason":"ENDED"},"order":` + jsonOrder("failed", "ended") + `}`},
		{"already bought", &pb.Response{Error: outcome.Refuse(outcome.Reason_ALREADY_BOUGHT), Order: pbOrder("created", 0)},
			nil, 409, `{"success":false,"error":{"code":409,"detail":"already bought","reason":"ALREADY_BOUGHT"},"order":` + jsonOrder("created", "") + `}`},
		{"unknown commodity", &pb.Response{Error: outcome.Refuse(outcome.Reason_COMMODITY_NOT_FOUND), Order: pbOrder("failed", outcome.Reason_COMMODITY_NOT_FOUND)},
			nil, 404, `{"success":false,"error":{"code":404,"detail":"commodity not found","reason":"COMMODITY_NOT_FOUND"},"order":` + jsonOrder("failed", "commodity not found") + `}`},
		{"request id reused", &pb.Response{Error: outcome.Refuse(outcome.Reason_REQUEST_REUSED)},
			nil, 409, `{"success":false,"error":{"code":409,"detail":"request id already used for another purchase","reason":"REQUEST_REUSED"}}`},
		{"pending", &pb.Response{Error: outcome.Refuse(outcome.Reason_ORDER_PENDING), Order: pbOrder("pending", 0)},
			nil, 202, `{"success":true,"order":` + jsonOrder("pending", "") + `}`},
		{"order-srv failed", nil, merrors.InternalServerError("go.micro.secbuy.srv.order", "storage unavailable"),
			503, `{"success":false,"error":{"code":503,"detail":"busy, try again","reason":"BUSY"}}`},
		{"order-srv timed out", nil, merrors.Timeout("go.micro.client", "request timeout"),
			503, `{"success":false,"error":{"code":503,"detail":"busy, try again","reason":"BUSY"}}`},
		{"order-srv not found", nil, merrors.InternalServerError("go.micro.client", "service go.micro.secbuy.srv.order: not found"),
			503, `{"success":false,"error":{"code":503,"detail":"busy, try again","reason":"BUSY"}}`},
	}
	tok := testutil.Bearer(t, secret, 42, time.Hour)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeOrders{rsp: tc.rsp, err: tc.err}
			h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes()
			w, body := do(t, h, request{"POST", "/order/sell", `{"id":7}`,
				map[string]string{"Authorization": tok, "Idempotency-Key": "Ab9_.:-k"}})
			tc.check(t, w, body)
			if ct := w.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type = %q", ct)
			}
			if len(f.creates) != 1 || f.creates[0].Sid != 7 || f.creates[0].UserId != 42 || f.creates[0].RequestId != "42:Ab9_.:-k" {
				t.Errorf("order-srv got %v; want sid 7, user 42, request id 42:Ab9_.:-k", f.creates)
			}
		})
	}
}

func TestRequestIDWithoutKey(t *testing.T) {
	t.Parallel()
	f := &fakeOrders{rsp: &pb.Response{Success: true, Order: pbOrder("created", 0)}}
	h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes()
	tok := testutil.Bearer(t, secret, 42, time.Hour)
	for range 2 {
		if w, _ := do(t, h, request{"POST", "/order/sell", `{"id":7}`, map[string]string{"Authorization": tok}}); w.Code != 200 {
			t.Fatalf("status = %d; want 200", w.Code)
		}
	}
	re := regexp.MustCompile(`^42:[0-9a-f]{32}$`)
	if len(f.creates) != 2 || !re.MatchString(f.creates[0].RequestId) || !re.MatchString(f.creates[1].RequestId) ||
		f.creates[0].RequestId == f.creates[1].RequestId {
		t.Errorf("request ids = %v; want two different 42:<32 hex>", f.creates)
	}
}

func TestGet(t *testing.T) {
	t.Parallel()
	tests := []replyCase{
		{"own order", &pb.Response{Success: true, Order: pbOrder("pending", 0)},
			nil, 200, `{"success":true,"order":` + jsonOrder("pending", "") + `}`},
		{"another user's", &pb.Response{Error: outcome.Refuse(outcome.Reason_NOT_YOURS)},
			nil, 403, `{"success":false,"error":{"code":403,"detail":"not your order","reason":"NOT_YOURS"}}`},
		{"unknown", &pb.Response{Error: outcome.Refuse(outcome.Reason_ORDER_NOT_FOUND)},
			nil, 404, `{"success":false,"error":{"code":404,"detail":"order not found","reason":"ORDER_NOT_FOUND"}}`},
		{"order-srv down", nil, merrors.InternalServerError("go.micro.client", "connection refused"),
			503, `{"success":false,"error":{"code":503,"detail":"busy, try again","reason":"BUSY"}}`},
	}
	tok := testutil.Bearer(t, secret, 42, time.Hour)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeOrders{rsp: tc.rsp, err: tc.err}
			w, body := do(t, handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes(),
				request{"GET", "/order/get?id=11", ``, map[string]string{"Authorization": tok}})
			tc.check(t, w, body)
			if len(f.gets) != 1 || f.gets[0].Id != 11 || f.gets[0].UserId != 42 {
				t.Errorf("order-srv got %v; want id 11 for user 42", f.gets)
			}
		})
	}
}

// TestSoldOut: after order-srv answers "sold out", order-web asks who holds the units, and
// for as long as order-srv says nobody else can get one, answers everyone else's press
// (with a key or without) itself; a holder's press still goes to order-srv. When the time
// runs out, presses go to order-srv again, so a unit that came back is sold again.
func TestSoldOut(t *testing.T) {
	t.Parallel()
	f := &fakeOrders{rsp: &pb.Response{Error: outcome.Refuse(outcome.Reason_SOLD_OUT)}}
	f.setHolders(&pb.HoldersResponse{Success: true, SoldOut: true, ValidForMs: 1000, Users: []int64{42}})
	hd := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second)
	defer hd.Close()
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	hd.SetClock(clock)
	h := hd.Routes()
	buy := func(user int64, id, key string) (*httptest.ResponseRecorder, map[string]any) {
		hd := map[string]string{"Authorization": testutil.Bearer(t, secret, user, time.Minute)}
		if key != "" {
			hd["Idempotency-Key"] = key
		}
		return do(t, h, request{"POST", "/order/sell", `{"id":` + id + `}`, hd})
	}
	if w, _ := buy(7, "5", ""); w.Code != 409 || f.calls() != 1 {
		t.Fatalf("first buy: %d after %d calls", w.Code, f.calls())
	}
	testutil.Eventually(t, 5*time.Second, "the holders of commodity 5", func() bool { return hd.KnowsSoldOut(5) })

	for _, key := range []string{"", "press-1"} {
		w, body := buy(7, "5", key)
		if e, _ := body["error"].(map[string]any); w.Code != 409 || e["reason"] != "SOLD_OUT" || f.calls() != 1 {
			t.Errorf("a non-holder's press (key %q): %d %v after %d calls; want sold out without a call", key, w.Code, body, f.calls())
		}
	}
	f.rsp = &pb.Response{Success: true, Order: &pb.Order{Id: 9, Sid: 5, UserId: 42, State: "created"}}
	if w, _ := buy(42, "5", "press-1"); w.Code != 200 || f.calls() != 2 || f.creates[1].LookupOnly {
		t.Errorf("the holder's press: %d after %d calls; want it sent on, and its order", w.Code, f.calls())
	}
	if w, _ := buy(7, "6", ""); w.Code != 200 || f.calls() != 3 {
		t.Errorf("another commodity is not known sold out: %d after %d calls", w.Code, f.calls())
	}

	// Near the end of the snapshot's time a press asks for the next one.
	advance(800 * time.Millisecond)
	calls := f.holderCalls()
	if w, _ := buy(7, "5", ""); w.Code != 409 || f.calls() != 3 {
		t.Errorf("near the end: %d after %d calls; want still sold out from memory", w.Code, f.calls())
	}
	testutil.Eventually(t, 5*time.Second, "a second question to order-srv", func() bool { return f.holderCalls() > calls })

	// When the time runs out without a new snapshot, presses go to order-srv again.
	f.setHolders(&pb.HoldersResponse{Success: true}) // a unit came back: not sold out any more
	advance(2 * time.Second)
	if w, _ := buy(8, "5", ""); w.Code != 200 || f.calls() != 4 {
		t.Errorf("after the snapshot lapsed: %d after %d calls; want a real buy", w.Code, f.calls())
	}
}
