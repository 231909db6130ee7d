// Package handler is payment-srv's RPC edge: it checks input, calls the repo, and turns the
// repo's outcomes into the responses' outcome.Error, in one function, refusal.
package handler

import (
	"context"
	"log/slog"

	merrors "go-micro.dev/v6/errors"

	"secbuy/basic/buyer"
	"secbuy/basic/db"
	"secbuy/basic/logs"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-srv/repo"
	"secbuy/proto/outcome"
)

// Store is the storage the handler needs; repo.Repo is the real one.
type Store interface {
	Pay(ctx context.Context, orderID int64, buyer string) (repo.Payment, error)
	Get(ctx context.Context, orderID int64, buyer string) (repo.Payment, error)
	Audit(ctx context.Context, commodityID int64) (repo.Audit, error)
}

// Payment implements pb.PaymentServiceHandler.
type Payment struct {
	store Store
}

// New returns the handler on store.
func New(store Store) *Payment { return &Payment{store: store} }

type badInput = outcome.InvalidInput

// checkPayRequest checks in and returns its buyer.
func checkPayRequest(in *pb.PayRequest) (string, error) {
	if in.Id <= 0 {
		return "", badInput("id (the order id) must be a positive integer")
	}
	who, err := buyer.Of(in.Buyer, in.UserId)
	if err != nil {
		return "", badInput(err.Error())
	}
	return who, nil
}

// PayOrder pays the payment of order in.Id for its owner in.Buyer (or in.UserId). Paying a paid order
// again is a success that returns the payment unchanged; paying an expired one is 409.
func (h *Payment) PayOrder(ctx context.Context, in *pb.PayRequest, out *pb.Response) error {
	return h.answer(ctx, in, out, h.store.Pay)
}

// GetPayment returns the payment of order in.Id to its owner in.Buyer (or in.UserId).
func (h *Payment) GetPayment(ctx context.Context, in *pb.PayRequest, out *pb.Response) error {
	return h.answer(ctx, in, out, h.store.Get)
}

// answer checks in, calls do with its order and user, and puts the payment or the refusal
// into out.
func (h *Payment) answer(ctx context.Context, in *pb.PayRequest, out *pb.Response,
	do func(ctx context.Context, orderID int64, buyer string) (repo.Payment, error)) error {
	ctx = logs.With(ctx, "order", in.Id)
	who, err := checkPayRequest(in)
	var p repo.Payment
	if err == nil {
		p, err = do(ctx, in.Id, who)
	}
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success, out.Payment = true, toProto(p)
	return nil
}

// Audit counts a commodity's payments by state, for the invariant checks.
func (h *Payment) Audit(ctx context.Context, in *pb.AuditRequest, out *pb.AuditResponse) error {
	var a repo.Audit
	err := error(badInput("commodityId must be a positive integer"))
	if in.CommodityId > 0 {
		a, err = h.store.Audit(ctx, in.CommodityId)
	}
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success = true
	out.Payments, out.Unpaid, out.Paid, out.Expired, out.OrderIdSum = a.Payments, a.Unpaid, a.Paid, a.Expired, a.OrderIDSum
	out.Live, out.LiveOrderIdSum = a.Live, a.LiveOrderIDSum
	return nil
}

// refusals are the repo's outcomes that callers branch on, and their reasons.
var refusals = []outcome.Rule{
	{Err: repo.ErrNotYours, Reason: outcome.Reason_NOT_YOURS},
	{Err: repo.ErrNotFound, Reason: outcome.Reason_PAYMENT_NOT_FOUND},
	{Err: repo.ErrExpired, Reason: outcome.Reason_PAYMENT_EXPIRED},
}

// refusal maps a repo outcome, or bad input, to the refusal callers see. Anything else is
// logged and returned as an RPC error, which callers treat as "busy".
func refusal(ctx context.Context, err error) (*outcome.Error, error) {
	if e := outcome.Of(err, refusals); e != nil {
		return e, nil
	}
	if e := db.Refusal(err); e != nil {
		return e, nil
	}
	slog.ErrorContext(ctx, "payment call failed", "err", err)
	return nil, merrors.InternalServerError(pb.Name, "storage unavailable")
}

func toProto(p repo.Payment) *pb.Payment {
	if p.ID == 0 {
		return nil
	}
	out := &pb.Payment{Id: p.ID, Sid: p.Sid, Name: p.Name, State: int32(p.State),
		CreateTime: p.CreateTime.Unix(), UserId: buyer.ID(p.Buyer), Buyer: p.Buyer, CommodityId: p.CommodityID}
	if p.PaidTime != nil {
		out.PaidTime = p.PaidTime.Unix()
	}
	return out
}
