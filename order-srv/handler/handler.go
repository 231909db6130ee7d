// Package handler is order-srv's RPC edge: it checks input, records the order, asks
// stock-srv for the unit, and turns the outcomes into the Response error codes (HTTP-like:
// 400, 403, 404, 409, and 503 for an order left pending).
package handler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	merrors "go-micro.dev/v6/errors"

	pb "secbuy/order-srv/proto/order"
	"secbuy/order-srv/repo"
	stockpb "secbuy/stock-srv/proto/stock"
)

// Name is order-srv's registry name.
const Name = "go.micro.secbuy.srv.order"

// MaxRequestID is the longest request id accepted, in bytes (stock-srv's limit too).
const MaxRequestID = 128

// Busy is the Response error code and detail of an order whose outcome is not known yet:
// it stays pending and recovery finishes it.
const (
	Busy       = 503
	BusyDetail = "busy: order pending"
)

// Store is the storage the handler needs; repo.Repo is the real one.
type Store interface {
	Insert(ctx context.Context, sid, userID int64, requestID string) (repo.Order, bool, error)
	FindByRequest(ctx context.Context, requestID string) (repo.Order, error)
	MarkCreated(ctx context.Context, id int64, name string) (repo.Order, error)
	MarkFailed(ctx context.Context, id int64, reason string) (repo.Order, error)
	Get(ctx context.Context, id int64) (repo.Order, error)
	Pending(ctx context.Context, olderThan time.Duration, afterID int64, limit int) ([]repo.Order, error)
	Audit(ctx context.Context, sid int64) (repo.Audit, error)
}

// Order implements pb.OrderServiceHandler.
type Order struct {
	store Store
	stock stockpb.StockService
	poke  func()
}

// New returns the handler on store and stock. poke, if not nil, is called after an order
// was created, to wake the outbox relay.
func New(store Store, stock stockpb.StockService, poke func()) *Order {
	if poke == nil {
		poke = func() {}
	}
	return &Order{store: store, stock: stock, poke: poke}
}

type badInput string

func (e badInput) Error() string { return string(e) }

var errNotYours = errors.New("not your order")

// CreateOrder records the order for the request id and takes its unit from stock-srv. The
// same request id always gets the same order back: a finished one as it is, a pending one
// after asking stock-srv again. If stock-srv cannot be asked, the order stays pending and
// the answer is error 503 "busy: order pending" with the order.
func (h *Order) CreateOrder(ctx context.Context, in *pb.CreateRequest, out *pb.Response) error {
	switch {
	case in.Sid <= 0:
		return fail(ctx, out, badInput("sid must be a positive integer"))
	case in.UserId <= 0:
		return fail(ctx, out, badInput("userId must be a positive integer"))
	case in.RequestId == "" || len(in.RequestId) > MaxRequestID:
		return fail(ctx, out, badInput("requestId must be 1 to 128 bytes"))
	}
	var o repo.Order
	var err error
	if in.LookupOnly {
		o, err = h.store.FindByRequest(ctx, in.RequestId)
		if err == nil && (o.Sid != in.Sid || o.UserID != in.UserId) {
			err = repo.ErrRequestReused
		}
	} else {
		o, _, err = h.store.Insert(ctx, in.Sid, in.UserId, in.RequestId)
	}
	if err != nil {
		out.Order = toProto(o)
		return fail(ctx, out, err)
	}
	if o.State == repo.Pending {
		var err error
		if o, err = h.finish(ctx, o); err != nil {
			slog.WarnContext(ctx, "order left pending", "order", o.ID, "request", o.RequestID, "err", err)
		}
	}
	answer(out, o)
	return nil
}

// finish asks stock-srv for pending order o's unit and records the answer. On an error the
// order stays pending and is returned as it was. Racing callers are safe: the store changes
// only a pending order, and stock-srv answers a request id the same way every time.
func (h *Order) finish(ctx context.Context, o repo.Order) (repo.Order, error) {
	sctx := ctx
	if d, ok := ctx.Deadline(); ok {
		// Keep a quarter of the caller's time to record the answer and reply.
		var cancel context.CancelFunc
		sctx, cancel = context.WithDeadline(ctx, d.Add(-time.Until(d)/4))
		defer cancel()
	}
	rsp, err := h.stock.Sell(sctx, &stockpb.SellRequest{Id: o.Sid, RequestId: o.RequestID, UserId: o.UserID})
	if err != nil {
		return o, fmt.Errorf("sell %d: %w", o.Sid, err)
	}
	// Once stock-srv has answered, record it even if our caller has gone away.
	mctx := context.WithoutCancel(ctx)
	var done repo.Order
	if rsp.GetSuccess() {
		done, err = h.store.MarkCreated(mctx, o.ID, rsp.GetCommodity().GetName())
		if err == nil {
			h.poke()
		}
	} else {
		reason := rsp.GetError().GetDetail()
		if reason == "" {
			reason = "refused"
		}
		done, err = h.store.MarkFailed(mctx, o.ID, reason)
	}
	if err != nil {
		return o, err
	}
	return done, nil
}

// answer puts order o's outcome into out: created is a success; failed carries its reason
// (404 for an unknown commodity, else 409); pending is 503 busy.
func answer(out *pb.Response, o repo.Order) {
	out.Order = toProto(o)
	switch o.State {
	case repo.Created:
		out.Success = true
	case repo.Failed:
		code := int32(409)
		if o.Reason == "commodity not found" {
			code = 404
		}
		out.Error = &pb.Error{Code: code, Detail: o.Reason}
	case repo.Cancelled:
		out.Error = &pb.Error{Code: 409, Detail: "order cancelled"}
	default:
		out.Error = &pb.Error{Code: Busy, Detail: BusyDetail}
	}
}

// GetOrder returns the user's own order.
func (h *Order) GetOrder(ctx context.Context, in *pb.GetRequest, out *pb.Response) error {
	switch {
	case in.Id <= 0:
		return fail(ctx, out, badInput("id must be a positive integer"))
	case in.UserId <= 0:
		return fail(ctx, out, badInput("userId must be a positive integer"))
	}
	o, err := h.store.Get(ctx, in.Id)
	if err == nil && o.UserID != in.UserId {
		err = errNotYours
	}
	if err != nil {
		return fail(ctx, out, err)
	}
	out.Success, out.Order = true, toProto(o)
	return nil
}

// Audit counts a commodity's orders, for the invariant checks.
func (h *Order) Audit(ctx context.Context, in *pb.AuditRequest, out *pb.AuditResponse) error {
	var r pb.Response
	if in.Sid <= 0 {
		err := fail(ctx, &r, badInput("sid must be a positive integer"))
		out.Error = r.Error
		return err
	}
	a, err := h.store.Audit(ctx, in.Sid)
	if err != nil {
		ferr := fail(ctx, &r, err)
		out.Error = r.Error
		return ferr
	}
	out.Success = true
	out.Live, out.Pending, out.Failed = a.Live, a.Pending, a.Failed
	out.UsersWithTwoLive, out.LiveIdSum, out.Unsent = a.UsersWithTwoLive, a.LiveIDSum, a.Unsent
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
	case errors.Is(err, errNotYours):
		code = 403
	case errors.Is(err, repo.ErrNotFound):
		code = 404
	case errors.Is(err, repo.ErrAlreadyBought), errors.Is(err, repo.ErrRequestReused):
		code = 409
	default:
		slog.ErrorContext(ctx, "order call failed", "err", err)
		return merrors.InternalServerError(Name, "storage unavailable")
	}
	out.Success = false
	out.Error = &pb.Error{Code: code, Detail: err.Error()}
	return nil
}

func toProto(o repo.Order) *pb.Order {
	if o.ID == 0 {
		return nil
	}
	return &pb.Order{Id: o.ID, Sid: o.Sid, Name: o.Name, CreateTime: o.CreateTime.Unix(), UserId: o.UserID,
		RequestId: o.RequestID, State: o.State, Reason: o.Reason}
}
