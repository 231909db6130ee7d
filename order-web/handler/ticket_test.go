package handler_test

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"secbuy/basic/auth"
	"secbuy/basic/httpapi"
	"secbuy/basic/testutil"
	"secbuy/basic/ticket"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-web/handler"
	stockpb "secbuy/stock-srv/proto/stock"
)

// ticketRoutes is order-web with tickets of bits of work, over commodities 7 (requires a
// ticket), 8 (does not), 9 (requires one, not started) and 10 (requires one, ended).
func ticketRoutes(t *testing.T, bits int) (http.Handler, *fakeOrders) {
	t.Helper()
	now := time.Now().Unix()
	stock := &fakeStock{list: []*stockpb.Commodity{
		{Id: 7, Name: "phone", Count: 5, TicketRequired: true},
		{Id: 8, Name: "cable", Count: 5},
		{Id: 9, Name: "later", Count: 5, TicketRequired: true, StartTime: now + 3600},
		{Id: 10, Name: "over", Count: 5, TicketRequired: true, StartTime: now - 7200, EndTime: now - 3600},
	}}
	issuer, err := ticket.New(secret, 10*time.Second, bits)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeOrders{rsp: &pb.Response{Success: true, Order: pbOrder("live", 0)}}
	h := handler.New(f, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second)
	h.Tickets(stock, issuer, time.Second)
	return h.Routes(), f
}

// getTicket fetches a ticket for commodity id as bearer; it fails the test unless 200.
func getTicket(t *testing.T, h http.Handler, bearer string, id int64) ticket.Ticket {
	t.Helper()
	w, body := do(t, h, request{"GET", fmt.Sprintf("/order/ticket?id=%d", id), "", map[string]string{"Authorization": bearer}})
	tk, _ := body["ticket"].(map[string]any)
	if w.Code != 200 || tk == nil {
		t.Fatalf("GET /order/ticket?id=%d: %d %v", id, w.Code, body)
	}
	value, _ := tk["value"].(string)
	pow, _ := tk["pow"].(float64)
	in, _ := tk["expiresIn"].(float64)
	if value == "" || in <= 0 || in > 10_000 {
		t.Fatalf("ticket %v; want a value that expires within 10 s", tk)
	}
	return ticket.Ticket{Value: value, Bits: int(pow)}
}

// buyWith presses for commodity id with body and says the status and the error's reason.
func buyWith(t *testing.T, h http.Handler, bearer, body string) (int, string) {
	t.Helper()
	w, rsp := do(t, h, request{"POST", "/order/sell", body, map[string]string{"Authorization": bearer}})
	e, _ := rsp["error"].(map[string]any)
	reason, _ := e["reason"].(string)
	return w.Code, reason
}

func TestTicketRequired(t *testing.T) {
	t.Parallel()
	h, f := ticketRoutes(t, 0)
	buyer := testutil.Bearer(t, secret, 42, time.Hour)
	other := testutil.Bearer(t, secret, 43, time.Hour)
	mine := getTicket(t, h, buyer, 7)
	theirs := getTicket(t, h, other, 7)
	forCable := getTicket(t, h, buyer, 8)
	if mine.Bits != 0 {
		t.Errorf("pow %d; want 0", mine.Bits)
	}
	for _, c := range []struct{ name, body string }{
		{"no ticket", `{"id":7}`},
		{"an empty ticket", `{"id":7,"ticket":""}`},
		{"another buyer's ticket", fmt.Sprintf(`{"id":7,"ticket":%q}`, theirs.Value)},
		{"another commodity's ticket", fmt.Sprintf(`{"id":7,"ticket":%q}`, forCable.Value)},
		{"a forged ticket", `{"id":7,"ticket":"1.7.99999999999999.0.AAAA"}`},
	} {
		if code, reason := buyWith(t, h, buyer, c.body); code != 403 || reason != "TICKET_REQUIRED" {
			t.Errorf("%s: %d %s; want 403 TICKET_REQUIRED", c.name, code, reason)
		}
	}
	if n := f.calls(); n != 0 {
		t.Fatalf("order-srv called %d times for presses without a valid ticket; want 0", n)
	}
	if code, reason := buyWith(t, h, buyer, fmt.Sprintf(`{"id":7,"ticket":%q}`, mine.Value)); code != 200 {
		t.Errorf("with its ticket: %d %s; want 200", code, reason)
	}
	if code, reason := buyWith(t, h, buyer, `{"id":8}`); code != 200 {
		t.Errorf("a commodity that needs no ticket, without one: %d %s; want 200", code, reason)
	}
	if n := f.calls(); n != 2 {
		t.Errorf("order-srv called %d times; want 2", n)
	}

	for _, c := range []struct {
		path   string
		bearer string
		code   int
		reason string
	}{
		{"/order/ticket?id=9", buyer, 409, "NOT_STARTED"},
		{"/order/ticket?id=10", buyer, 409, "ENDED"},
		{"/order/ticket?id=11", buyer, 404, "COMMODITY_NOT_FOUND"},
		{"/order/ticket?id=0", buyer, 400, "INVALID_INPUT"},
		{"/order/ticket?id=x", buyer, 400, "INVALID_INPUT"},
		{"/order/ticket", buyer, 400, "INVALID_INPUT"},
		{"/order/ticket?id=7", "", 401, "UNAUTHENTICATED"},
		{"/order/ticket?id=7", "Bearer x.y.z", 401, "INVALID_TOKEN"},
	} {
		hdr := map[string]string{}
		if c.bearer != "" {
			hdr["Authorization"] = c.bearer
		}
		w, body := do(t, h, request{"GET", c.path, "", hdr})
		e, _ := body["error"].(map[string]any)
		if w.Code != c.code || e["reason"] != c.reason || body["ticket"] != nil {
			t.Errorf("GET %s: %d %v; want %d %s and no ticket", c.path, w.Code, body, c.code, c.reason)
		}
	}
	if code, _ := buyWith(t, h, buyer, `{"id":7,"ticket":5}`); code != 400 {
		t.Errorf("a ticket that is not a string: %d; want 400", code)
	}
}

func TestTicketProofOfWork(t *testing.T) {
	t.Parallel()
	h, f := ticketRoutes(t, 8)
	buyer := testutil.Bearer(t, secret, 42, time.Hour)
	tk := getTicket(t, h, buyer, 7)
	if tk.Bits != 8 {
		t.Fatalf("pow %d; want 8", tk.Bits)
	}
	wrong := "x"
	for ticket.ZeroBits(tk.Value, wrong) >= 8 {
		wrong += "x"
	}
	for _, nonce := range []string{"", wrong} {
		if code, reason := buyWith(t, h, buyer, fmt.Sprintf(`{"id":7,"ticket":%q,"nonce":%q}`, tk.Value, nonce)); code != 403 || reason != "TICKET_REQUIRED" {
			t.Errorf("nonce %q: %d %s; want 403 TICKET_REQUIRED", nonce, code, reason)
		}
	}
	if code, reason := buyWith(t, h, buyer, fmt.Sprintf(`{"id":7,"ticket":%q,"nonce":%q}`, tk.Value, ticket.Solve(tk))); code != 200 {
		t.Errorf("solved: %d %s; want 200", code, reason)
	}
	if n := f.calls(); n != 1 {
		t.Errorf("order-srv called %d times; want 1", n)
	}
}

// A commodity this instance has not read yet: a press without a ticket is refused after
// the rate limit (the read of its terms costs an RPC), still before order-srv; stock-srv
// failing is "busy" on both routes, never a sale without a ticket.
func TestTicketTermsUnknown(t *testing.T) {
	t.Parallel()
	buyer := testutil.Bearer(t, secret, 42, time.Hour)
	h, f := ticketRoutes(t, 0)
	if code, reason := buyWith(t, h, buyer, `{"id":7}`); code != 403 || reason != "TICKET_REQUIRED" {
		t.Errorf("the first press for commodity 7, without a ticket: %d %s; want 403 TICKET_REQUIRED", code, reason)
	}
	if code, reason := buyWith(t, h, buyer, `{"id":11}`); code != 200 {
		t.Errorf("a commodity stock-srv does not have goes on to order-srv: %d %s", code, reason)
	}
	if n := f.calls(); n != 1 {
		t.Errorf("order-srv called %d times; want 1 (commodity 11's)", n)
	}

	issuer, err := ticket.New(secret, 10*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	down := &fakeOrders{rsp: &pb.Response{Success: true}}
	hd := handler.New(down, auth.NewVerifier(secret, 100), 4096, nil, nil, time.Second)
	hd.Tickets(&fakeStock{err: errors.New("stock-srv down")}, issuer, time.Second)
	routes := hd.Routes()
	if code, reason := buyWith(t, routes, buyer, `{"id":7}`); code != 503 || reason != "BUSY" {
		t.Errorf("a press while stock-srv is down: %d %s; want 503 BUSY", code, reason)
	}
	w, body := do(t, routes, request{"GET", "/order/ticket?id=7", "", map[string]string{"Authorization": buyer}})
	if e, _ := body["error"].(map[string]any); w.Code != 503 || e["reason"] != "BUSY" {
		t.Errorf("a ticket while stock-srv is down: %d %v; want 503 BUSY", w.Code, body)
	}
	if n := down.calls(); n != 0 {
		t.Errorf("order-srv called %d times while the terms were unknown; want 0", n)
	}
}

// The ticket route is within the buyer's rate limit, the same budget as the presses.
func TestTicketRateLimited(t *testing.T) {
	t.Parallel()
	stock := &fakeStock{list: []*stockpb.Commodity{{Id: 7, Count: 5, TicketRequired: true}}}
	issuer, err := ticket.New(secret, 10*time.Second, 0)
	if err != nil {
		t.Fatal(err)
	}
	h := handler.New(&fakeOrders{rsp: &pb.Response{Success: true}}, auth.NewVerifier(secret, 100), 4096, nil,
		newGuard(t, httpapi.GuardConfig{UserPerSec: 2, IPExempt: "0.0.0.0/0,::/0"}), time.Second)
	h.Tickets(stock, issuer, time.Second)
	routes := h.Routes()
	buyer := testutil.Bearer(t, secret, 42, time.Hour)
	var codes []int
	for range 3 {
		w, _ := do(t, routes, request{"GET", "/order/ticket?id=7", "", map[string]string{"Authorization": buyer}})
		codes = append(codes, w.Code)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("three tickets within a second at 2/s: %v; want [200 200 429]", codes)
	}
}
