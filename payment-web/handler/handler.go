// Package handler is payment-web's HTTP edge: JSON in, PaymentService RPC, JSON out.
package handler

import (
	"context"
	"net/http"

	"go-micro.dev/v6/client"

	"secbuy/basic/auth"
	"secbuy/basic/buyer"
	"secbuy/basic/httpapi"
	pb "secbuy/payment-srv/proto/payment"
)

// Name is payment-web's registry name.
const Name = "go.micro.secbuy.web.payment"

// Payment is the JSON form of a payment: sid is the order id; state 0 unpaid, 1 paid,
// 2 expired; times in unix seconds, paidTime 0 until paid.
type Payment struct {
	ID          int64  `json:"id"`
	Sid         int64  `json:"sid"`
	Name        string `json:"name"`
	State       int32  `json:"state"`
	CreateTime  int64  `json:"createTime"`
	UserID      int64  `json:"userId"` // the buyer's number, 0 for a buyer that is not one
	Buyer       string `json:"buyer"`  // the token's sub
	PaidTime    int64  `json:"paidTime"`
	CommodityID int64  `json:"commodityId"`
}

// FromProto converts the RPC form (never nil).
func FromProto(p *pb.Payment) *Payment {
	out := &Payment{ID: p.Id, Sid: p.Sid, Name: p.Name, State: p.State, CreateTime: p.CreateTime,
		UserID: p.UserId, Buyer: p.Buyer, PaidTime: p.PaidTime, CommodityID: p.CommodityId}
	if out.Buyer == "" && p.UserId > 0 { // a payment-srv from before buyers were strings
		out.Buyer = buyer.FromID(p.UserId)
	}
	return out
}

// Handler serves /payment/*.
type Handler struct {
	payment pb.PaymentService
	users   *auth.Verifier
	maxBody int64
	limit   *httpapi.Limiter
}

// New returns the handler. users checks the buyers' bearer tokens; maxBody caps request
// bodies; limit (nil: none) caps the calls in flight to payment-srv.
func New(payment pb.PaymentService, users *auth.Verifier, maxBody int64, limit *httpapi.Limiter) *Handler {
	return &Handler{payment: payment, users: users, maxBody: maxBody, limit: limit}
}

// Routes returns the service's whole HTTP surface.
func (h *Handler) Routes() http.Handler {
	return httpapi.Mux(
		httpapi.Post("/payment/payorder", h.payOrder),
		httpapi.Get("/payment/get", h.get),
	)
}

// payOrder pays the buyer's own order; paying a paid order again is a success.
func (h *Handler) payOrder(w http.ResponseWriter, r *http.Request) {
	id, e := httpapi.DecodeID(w, r, h.maxBody, "id (the order id)")
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	h.call(w, r, id, h.payment.PayOrder)
}

// get returns the payment of the buyer's own order.
func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, e := httpapi.PositiveID("id", r.URL.Query().Get("id"))
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	h.call(w, r, id, h.payment.GetPayment)
}

// call makes the RPC for order id on behalf of the token's buyer, within the in-flight
// cap, and replies with its answer.
func (h *Handler) call(w http.ResponseWriter, r *http.Request, id int64,
	rpc func(context.Context, *pb.PayRequest, ...client.CallOption) (*pb.Response, error)) {
	user, e := httpapi.User(h.users, r)
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	release, ok := h.limit.Acquire(w, r)
	if !ok {
		return
	}
	defer release()
	rsp, err := rpc(r.Context(), &pb.PayRequest{Id: id, UserId: buyer.ID(user), Buyer: user})
	httpapi.Reply(w, r, err, rsp.GetError(), "payment", rsp.GetPayment(), FromProto)
}
