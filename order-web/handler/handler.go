// Package handler is order-web's HTTP edge: JSON in, OrderService RPC, JSON out.
package handler

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"time"

	"secbuy/basic/auth"
	"secbuy/basic/batch"
	"secbuy/basic/buyer"
	"secbuy/basic/httpapi"
	"secbuy/basic/metrics"
	"secbuy/basic/ticket"
	"secbuy/basic/tracing"
	"secbuy/basic/turned"
	pb "secbuy/order-srv/proto/order"
	"secbuy/proto/outcome"
)

// Name is order-web's registry name.
const Name = "go.micro.secbuy.web.order"

// MaxKeyLen is the longest Idempotency-Key accepted.
const MaxKeyLen = 64

// MaxListLimit is the most orders one page of /order/list holds.
const MaxListLimit = 100

// Order is the JSON form of an order (createTime in unix seconds); reason says, in
// English, why a failed order failed.
type Order struct {
	ID         int64  `json:"id"`
	Sid        int64  `json:"sid"`
	Name       string `json:"name"`
	CreateTime int64  `json:"createTime"`
	UserID     int64  `json:"userId"` // the buyer's number, 0 for a buyer that is not one
	Buyer      string `json:"buyer"`  // the token's sub
	State      string `json:"state"`
	Reason     string `json:"reason"`
}

// FromProto converts the RPC form (never nil).
func FromProto(o *pb.Order) *Order {
	out := &Order{ID: o.Id, Sid: o.Sid, Name: o.Name, CreateTime: o.CreateTime, UserID: o.UserId, Buyer: o.Buyer, State: o.State}
	if out.Buyer == "" && o.UserId > 0 { // an order-srv from before buyers were strings
		out.Buyer = buyer.FromID(o.UserId)
	}
	if o.Failure != outcome.Reason_REASON_UNSPECIFIED || o.State == "failed" {
		out.Reason = httpapi.Text(o.Failure, "en") // "refused" for a failure without a known reason
	}
	return out
}

// Handler serves /order/*.
type Handler struct {
	orders  pb.OrderService
	users   *auth.Verifier
	maxBody int64
	limit   *httpapi.Limiter
	guard   *httpapi.Guard
	soldOut *soldOut
	buys    *batch.Batcher[*pb.CreateRequest, *pb.Response]
	turned  *turned.Counter
	tickets *ticket.Issuer // nil: no tickets (see Tickets)
	terms   *saleTerms
}

// New returns the handler. users verifies the buyers' tokens; maxBody caps request bodies;
// limit (nil: none) caps the buys in flight to order-srv; guard (nil: none) applies the
// per-user and per-IP rate limits and turns away a user's second press while the first is
// in flight; rpcTimeout bounds each call. Concurrent buys go to order-srv together, in
// CreateOrders batches. Close stops it.
func New(orders pb.OrderService, users *auth.Verifier, maxBody int64, limit *httpapi.Limiter, guard *httpapi.Guard, rpcTimeout time.Duration) *Handler {
	h := &Handler{orders: orders, users: users, maxBody: maxBody, limit: limit, guard: guard}
	h.buys = batch.New(2, 256, rpcTimeout, h.createOrders)
	h.soldOut = newSoldOut(func(ctx context.Context, sid int64) (*pb.HoldersResponse, error) {
		return orders.Holders(ctx, &pb.HoldersRequest{Sid: sid})
	}, rpcTimeout, time.Now)
	return h
}

// CountTurned makes h count, in c, every press for a commodity that it turns away (for
// the shop's page).
func (h *Handler) CountTurned(c *turned.Counter) { h.turned = c }

// turnedAway counts a press for commodity id refused for good: sold out, not started,
// ended, already bought, slow down or already in progress (not "busy", which the buyer
// resends, nor bad input).
func (h *Handler) turnedAway(id int64) {
	if h.turned != nil {
		h.turned.Add(id)
	}
}

// Close stops the batching once the buys already queued have been sent.
func (h *Handler) Close() { h.buys.Close() }

func (h *Handler) createOrders(ctx context.Context, items []*pb.CreateRequest) (_ []*pb.Response, err error) {
	metrics.BatchSize.WithLabelValues("create_orders").Observe(float64(len(items)))
	ctx, span := tracing.StartBatch(ctx, "order-web CreateOrders", len(items), func(i int) string { return items[i].Traceparent })
	defer func() { tracing.End(span, err) }()
	rsp, err := h.orders.CreateOrders(ctx, &pb.CreateBatchRequest{Items: items})
	if err != nil {
		return nil, err
	}
	return rsp.Items, nil
}

// Routes returns the service's whole HTTP surface: its own routes and extra (the pages).
func (h *Handler) Routes(extra ...httpapi.Endpoint) http.Handler {
	return httpapi.Mux(append([]httpapi.Endpoint{
		httpapi.Post("/order/sell", h.sell),
		httpapi.Get("/order/ticket", h.ticket),
		httpapi.Get("/order/get", h.get),
		httpapi.Get("/order/list", h.list),
	}, extra...)...)
}

// sellBody is the body of POST /order/sell: the commodity, and for one that requires a
// ticket, the ticket and its proof of work's nonce.
type sellBody struct {
	ID     int64  `json:"id"`
	Ticket string `json:"ticket"`
	Nonce  string `json:"nonce"`
}

// sell buys one unit of commodity id for the token's user. With an Idempotency-Key header
// a retry gets the same order back; without one every request is a new attempt.
func (h *Handler) sell(w http.ResponseWriter, r *http.Request) {
	user, e := httpapi.User(h.users, r)
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	key, e := idempotencyKey(r)
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	var b sellBody
	if e := httpapi.Decode(w, r, h.maxBody, &b); e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	id := b.ID
	if id <= 0 {
		httpapi.Fail(w, r, httpapi.Invalid("id must be a positive integer"))
		return
	}
	// Most of a flash crowd arrives after the last unit went: answer them here, from the
	// snapshot of who holds the units (see soldOut), which order-srv took from Postgres
	// with the time for which nobody else can get one. A press by a holder goes on: it may
	// be the resend of the press that got the order.
	if h.soldOut.refuse(id, user) {
		h.turnedAway(id)
		httpapi.Fail(w, r, outcome.Refuse(outcome.Reason_SOLD_OUT))
		return
	}
	// A press without a ticket for a commodity that requires one: refused here, in memory,
	// if this instance knows the commodity's terms; after the rate limit otherwise.
	checked, e := h.admitTicket(r.Context(), user, id, b, false)
	if e != nil {
		h.refuseTicket(w, r, id, e)
		return
	}
	if key == "" {
		key = randomKey()
	}
	requestID := requestOf(user, key)
	// Rate limits and duplicate presses: after the checks that cost nothing, before the
	// RPC. Another press while the same user's press for this commodity is in flight gets
	// 409 "already in progress"; a resend of that same press gets 503 "busy, try again".
	done, ok := h.guard.Admit(w, r, user, id, requestID)
	if !ok {
		h.turnedAway(id) // slow down, another press in flight (or, rarely, the resend of this one while it is)
		return
	}
	defer done()
	release, ok := h.limit.Acquire(w, r)
	if !ok {
		return
	}
	defer release()
	if !checked {
		if _, e := h.admitTicket(r.Context(), user, id, b, true); e != nil {
			h.refuseTicket(w, r, id, e)
			return
		}
	}
	rsp, err := h.buys.Do(r.Context(), &pb.CreateRequest{Sid: id, UserId: buyer.ID(user), Buyer: user, RequestId: requestID,
		Traceparent: tracing.Traceparent(r.Context())})
	switch rsp.GetError().GetReason() {
	case outcome.Reason_SOLD_OUT:
		h.soldOut.refresh(id)
		h.turnedAway(id)
	case outcome.Reason_NOT_STARTED, outcome.Reason_ENDED, outcome.Reason_ALREADY_BOUGHT:
		h.turnedAway(id)
	}
	httpapi.Reply(w, r, err, rsp.GetError(), "order", rsp.GetOrder(), FromProto)
}

// idempotencyKey returns the Idempotency-Key header: absent, or 1 to 64 characters of
// A-Z a-z 0-9 _ . : -.
func idempotencyKey(r *http.Request) (string, *outcome.Error) {
	vals := r.Header.Values("Idempotency-Key")
	if len(vals) == 0 {
		return "", nil
	}
	k := vals[0]
	if len(vals) > 1 || k == "" || len(k) > MaxKeyLen || strings.IndexFunc(k, badKeyRune) >= 0 {
		return "", httpapi.Invalid("Idempotency-Key must be one header of 1 to 64 characters from A-Z a-z 0-9 _ . : -")
	}
	return k, nil
}

func badKeyRune(c rune) bool {
	ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '.' || c == ':' || c == '-'
	return !ok
}

// requestOf is the request id of user's press with Idempotency-Key key. A numeric user's
// is "<user>:<key>", as before buyers were strings (a resend across an upgrade finds its
// order). Any other buyer's is "b<128 bits of its SHA-256 in hex>:<key>": at most 98 bytes
// (a sub may have 1020), and no buyer's ':' can make it another buyer's id.
func requestOf(user, key string) string {
	if buyer.ID(user) > 0 {
		return user + ":" + key
	}
	sum := sha256.Sum256([]byte(user))
	return "b" + hex.EncodeToString(sum[:16]) + ":" + key
}

// randomKey returns 128 random bits in hex.
func randomKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}

// get returns one of the token's user's orders.
func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	user, e := httpapi.User(h.users, r)
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	id, e := httpapi.PositiveID("id", r.URL.Query().Get("id"))
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	rsp, err := h.orders.GetOrder(r.Context(), &pb.GetRequest{Id: id, UserId: buyer.ID(user), Buyer: user})
	httpapi.Reply(w, r, err, rsp.GetError(), "order", rsp.GetOrder(), FromProto)
}

// list returns a page of the token's user's own orders, newest first: ?offset (default 0)
// and ?limit (default 20, at most 100). The reply is {"success":true,"page":{"orders":
// [...],"more":B}}; more says whether there are older ones.
func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	user, e := httpapi.User(h.users, r)
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	offset, limit, e := httpapi.Paging(r.URL.Query(), MaxListLimit)
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	rsp, err := h.orders.ListOrders(r.Context(), &pb.ListRequest{UserId: buyer.ID(user), Buyer: user, Offset: offset, Limit: limit})
	list := rsp
	if rsp.GetError() != nil {
		list = nil // a refusal shows no list
	}
	httpapi.Reply(w, r, err, rsp.GetError(), "page", list, func(l *pb.ListResponse) map[string]any {
		out := make([]*Order, 0, len(l.Orders))
		for _, o := range l.Orders {
			out = append(out, FromProto(o))
		}
		return map[string]any{"orders": out, "more": l.More}
	})
}
