// Package handler is payment-srv's RPC edge: it checks input, calls the repo, and turns the
// repo's outcomes into the Response error codes (HTTP-like: 400, 403, 404, 409).
package handler

import (
	"context"
	"errors"
	"log/slog"

	merrors "go-micro.dev/v6/errors"

	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-srv/repo"
)

// Name is payment-srv's registry name.
const Name = "go.micro.secbuy.srv.payment"

// Store is the storage the handler needs; repo.Repo is the real one.
type Store interface {
	Pay(ctx context.Context, orderID, userID int64) (repo.Payment, error)
	Get(ctx context.Context, orderID, userID int64) (repo.Payment, error)
	Audit(ctx context.Context, commodityID int64) (repo.Audit, error)
}

// Payment implements pb.PaymentServiceHandler.
type Payment struct {
	store Store
}

// New returns the handler on store.
func New(store Store) *Payment { return &Payment{store: store} }

type badInput string

func (e badInput) Error() string { return string(e) }

func checkPayRequest(in *pb.PayRequest) error {
	switch {
	case in.Id <= 0:
		return badInput("id (the order id) must be a positive integer")
	case in.UserId <= 0:
		return badInput("userId must be a positive integer")
	}
	return nil
}

// PayOrder pays the payment of order in.Id for its owner in.UserId. Paying a paid order
// again is a success that returns the payment unchanged; paying an expired one is 409.
func (h *Payment) PayOrder(ctx context.Context, in *pb.PayRequest, out *pb.Response) error {
	if err := checkPayRequest(in); err != nil {
		return fail(ctx, out, err)
	}
	p, err := h.store.Pay(ctx, in.Id, in.UserId)
	if err != nil {
		return fail(ctx, out, err)
	}
	out.Success, out.Payment = true, toProto(p)
	return nil
}

// GetPayment returns the payment of order in.Id to its owner in.UserId.
func (h *Payment) GetPayment(ctx context.Context, in *pb.PayRequest, out *pb.Response) error {
	if err := checkPayRequest(in); err != nil {
		return fail(ctx, out, err)
	}
	p, err := h.store.Get(ctx, in.Id, in.UserId)
	if err != nil {
		return fail(ctx, out, err)
	}
	out.Success, out.Payment = true, toProto(p)
	return nil
}

// Audit counts a commodity's payments by state, for the invariant checks.
func (h *Payment) Audit(ctx context.Context, in *pb.AuditRequest, out *pb.AuditResponse) error {
	var r pb.Response
	if in.CommodityId <= 0 {
		ferr := fail(ctx, &r, badInput("commodityId must be a positive integer"))
		out.Error = r.Error
		return ferr
	}
	a, err := h.store.Audit(ctx, in.CommodityId)
	if err != nil {
		ferr := fail(ctx, &r, err)
		out.Error = r.Error
		return ferr
	}
	out.Success = true
	out.Payments, out.Unpaid, out.Paid, out.Expired, out.OrderIdSum = a.Payments, a.Unpaid, a.Paid, a.Expired, a.OrderIDSum
	out.Live, out.LiveOrderIdSum = a.Live, a.LiveOrderIDSum
	return nil
}

// fail puts an expected outcome into out.Error and returns nil; anything else is logged and
// returned as an RPC error, which callers treat as "busy".
func fail(ctx context.Context, out *pb.Response, err error) error {
	var bad badInput
	code := int32(0)
	switch {
	case errors.As(err, &bad):
		code = 400
	case errors.Is(err, repo.ErrNotYours):
		code = 403
	case errors.Is(err, repo.ErrNotFound):
		code = 404
	case errors.Is(err, repo.ErrExpired):
		code = 409
	default:
		slog.ErrorContext(ctx, "payment call failed", "err", err)
		return merrors.InternalServerError(Name, "storage unavailable")
	}
	out.Success = false
	out.Error = &pb.Error{Code: code, Detail: err.Error()}
	return nil
}

func toProto(p repo.Payment) *pb.Payment {
	if p.ID == 0 {
		return nil
	}
	out := &pb.Payment{Id: p.ID, Sid: p.Sid, Name: p.Name, State: int32(p.State),
		CreateTime: p.CreateTime.Unix(), UserId: p.UserID, CommodityId: p.CommodityID}
	if p.PaidTime != nil {
		out.PaidTime = p.PaidTime.Unix()
	}
	return out
}
