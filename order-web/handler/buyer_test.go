package handler_test

import (
	"strings"
	"testing"
	"time"

	"secbuy/basic/auth"
	"secbuy/basic/testutil"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-web/handler"
	"secbuy/proto/outcome"
)

// A token whose sub is not a number buys, gets and lists as that buyer: the RPCs carry
// buyer (userId 0), the replies show it, and its request id is its own; a numeric sub's
// requests are as before. A sub that breaks the rules is 401, and nothing is called.
func TestStringSub(t *testing.T) {
	t.Parallel()
	uuid := "6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34"
	f := &fakeOrders{rsp: &pb.Response{Success: true, Order: &pb.Order{Id: 11, Sid: 7, Buyer: uuid, State: "created"}}}
	h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes()
	bearer := func(sub string) string {
		tok, err := auth.MintSub(secret, sub, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + tok
	}
	w, body := do(t, h, request{"POST", "/order/sell", `{"id":7}`, map[string]string{"Authorization": bearer(uuid), "Idempotency-Key": "k1"}})
	order, _ := body["order"].(map[string]any)
	if w.Code != 200 || order["buyer"] != uuid || order["userId"] != float64(0) {
		t.Fatalf("sell by %s = %d %v; want 200 with buyer %s, userId 0", uuid, w.Code, body, uuid)
	}
	do(t, h, request{"POST", "/order/sell", `{"id":7}`, map[string]string{"Authorization": bearer("42"), "Idempotency-Key": "k1"}})
	do(t, h, request{"GET", "/order/get?id=11", ``, map[string]string{"Authorization": bearer(uuid)}})
	f.mu.Lock()
	creates, gets := f.creates, f.gets
	f.mu.Unlock()
	if len(creates) != 2 || len(gets) != 1 {
		t.Fatalf("calls: %d creates, %d gets; want 2, 1", len(creates), len(gets))
	}
	if c := creates[0]; c.Buyer != uuid || c.UserId != 0 || !strings.HasSuffix(c.RequestId, ":k1") || strings.Contains(c.RequestId, uuid) || len(c.RequestId) > 128 {
		t.Errorf("create by %s = %v; want buyer %s, userId 0, a request id of its own", uuid, c, uuid)
	}
	if c := creates[1]; c.Buyer != "42" || c.UserId != 42 || c.RequestId != "42:k1" {
		t.Errorf("create by 42 = %v; want buyer 42, userId 42, request 42:k1", c)
	}
	if g := gets[0]; g.Buyer != uuid || g.UserId != 0 {
		t.Errorf("get by %s = %v", uuid, g)
	}
	for name, sub := range map[string]string{"empty": "", "256 chars": strings.Repeat("a", 256),
		"space": "ana bob", "control": "a\x01b", "newline": "a\nb"} {
		t.Run(name, func(t *testing.T) {
			w, body := do(t, h, request{"POST", "/order/sell", `{"id":7}`, map[string]string{"Authorization": bearer(sub)}})
			if e, _ := body["error"].(map[string]any); w.Code != 401 || e["reason"] != "INVALID_TOKEN" {
				t.Errorf("sub %q: %d %v; want 401 INVALID_TOKEN", sub, w.Code, body)
			}
		})
	}
	if n := f.calls(); n != 3 {
		t.Errorf("order-srv calls = %d; the refused tokens made some", n)
	}
}

// A long buyer's request id stays within the 128 bytes order-srv and stock-srv accept.
func TestLongSubRequestID(t *testing.T) {
	t.Parallel()
	f := &fakeOrders{rsp: &pb.Response{Success: true, Order: &pb.Order{Id: 11, Sid: 7, State: "created"}}}
	h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second).Routes()
	tok, _ := auth.MintSub(secret, strings.Repeat("雷", 255), time.Hour)
	key := strings.Repeat("k", 64)
	if w, body := do(t, h, request{"POST", "/order/sell", `{"id":7}`, map[string]string{"Authorization": "Bearer " + tok, "Idempotency-Key": key}}); w.Code != 200 {
		t.Fatalf("sell = %d %v", w.Code, body)
	}
	if rid := f.creates[0].RequestId; len(rid) > 128 {
		t.Errorf("request id of %d bytes", len(rid))
	}
}

// A UUID holder of a sold-out commodity is known by its buyer string (buyers), a numeric
// one by buyers or, from an order-srv from before, by users: their presses go on; anyone
// else's is "sold out" from memory.
func TestSoldOutStringHolders(t *testing.T) {
	t.Parallel()
	uuid := "6f1c2a9e-3b7d-4c11-9a0e-2f5d8c7b1a34"
	f := &fakeOrders{rsp: &pb.Response{Error: outcome.Refuse(outcome.Reason_SOLD_OUT)}}
	f.setHolders(&pb.HoldersResponse{Success: true, SoldOut: true, ValidForMs: 60_000, Buyers: []string{uuid}, Users: []int64{42}})
	hd := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second)
	defer hd.Close()
	h := hd.Routes()
	buy := func(sub string) int {
		tok, _ := auth.MintSub(secret, sub, time.Minute)
		w, _ := do(t, h, request{"POST", "/order/sell", `{"id":5}`, map[string]string{"Authorization": "Bearer " + tok}})
		return w.Code
	}
	buy("7")
	testutil.Eventually(t, 5*time.Second, "the holders of commodity 5", func() bool { return hd.KnowsSoldOut(5) })
	before := f.calls()
	for _, sub := range []string{"7", "6f1c2a9e", uuid + "x"} {
		if code := buy(sub); code != 409 || f.calls() != before {
			t.Errorf("non-holder %s: %d after %d calls; want sold out from memory", sub, code, f.calls()-before)
		}
	}
	for i, sub := range []string{uuid, "42"} {
		buy(sub)
		if f.calls() != before+i+1 {
			t.Errorf("holder %s was answered from memory", sub)
		}
	}
}
