// Package handler is payment-web's HTTP edge: JSON in, PaymentService RPC, JSON out.
package handler

import (
	"net/http"

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
	UserID      int64  `json:"userId"`
	PaidTime    int64  `json:"paidTime"`
	CommodityID int64  `json:"commodityId"`
}

// FromProto converts the RPC form.
func FromProto(p *pb.Payment) *Payment {
	if p == nil {
		return nil
	}
	return &Payment{ID: p.Id, Sid: p.Sid, Name: p.Name, State: p.State, CreateTime: p.CreateTime,
		UserID: p.UserId, PaidTime: p.PaidTime, CommodityID: p.CommodityId}
}

// Handler serves /payment/*.
type Handler struct {
	payment pb.PaymentService
	secret  string
	maxBody int64
	limit   *httpapi.Limiter
}

// New returns the handler. secret checks the buyers' bearer tokens; maxBody caps request
// bodies; limit (nil: none) caps the calls in flight to payment-srv.
func New(payment pb.PaymentService, secret string, maxBody int64, limit *httpapi.Limiter) *Handler {
	return &Handler{payment: payment, secret: secret, maxBody: maxBody, limit: limit}
}

// Routes returns the service's whole HTTP surface.
func (h *Handler) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/payment/payorder", httpapi.Route(http.MethodPost, h.payOrder))
	mux.HandleFunc("/payment/get", httpapi.Route(http.MethodGet, h.get))
	return httpapi.Recover(mux)
}

type payBody struct {
	ID int64 `json:"id"`
}

// payOrder pays the buyer's own order; paying a paid order again is a success.
func (h *Handler) payOrder(w http.ResponseWriter, r *http.Request) {
	var b payBody
	if e := httpapi.Decode(w, r, h.maxBody, &b); e != nil {
		httpapi.Fail(w, e)
		return
	}
	if b.ID <= 0 {
		httpapi.Fail(w, httpapi.Errorf(http.StatusBadRequest, "id (the order id) must be a positive integer"))
		return
	}
	user, e := httpapi.User(h.secret, r)
	if e != nil {
		httpapi.Fail(w, e)
		return
	}
	release, ok := h.limit.Acquire(w, r)
	if !ok {
		return
	}
	defer release()
	rsp, err := h.payment.PayOrder(r.Context(), &pb.PayRequest{Id: b.ID, UserId: user})
	h.reply(w, rsp, err)
}

// get returns the payment of the buyer's own order.
func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, e := httpapi.PositiveID("id", r.URL.Query().Get("id"))
	if e != nil {
		httpapi.Fail(w, e)
		return
	}
	user, e := httpapi.User(h.secret, r)
	if e != nil {
		httpapi.Fail(w, e)
		return
	}
	release, ok := h.limit.Acquire(w, r)
	if !ok {
		return
	}
	defer release()
	rsp, err := h.payment.GetPayment(r.Context(), &pb.PayRequest{Id: id, UserId: user})
	h.reply(w, rsp, err)
}

func (h *Handler) reply(w http.ResponseWriter, rsp *pb.Response, err error) {
	switch {
	case err != nil:
		httpapi.Fail(w, httpapi.FromRPC(err))
	case rsp.Error != nil:
		httpapi.Fail(w, &httpapi.Error{Code: int(rsp.Error.Code), Detail: rsp.Error.Detail})
	case rsp.Payment == nil:
		httpapi.Fail(w, httpapi.Errorf(http.StatusServiceUnavailable, "busy, try again"))
	default:
		httpapi.OK(w, "payment", FromProto(rsp.Payment))
	}
}
