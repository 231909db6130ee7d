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
	"google.golang.org/protobuf/proto"

	"secbuy/basic/batch"

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
	InsertBatch(ctx context.Context, items []repo.NewOrder) ([]repo.Order, []error, error)
	FindByRequests(ctx context.Context, requestIDs []string) (map[string]repo.Order, error)
	Finish(ctx context.Context, grants []repo.Grant, refusals []repo.Refusal) (map[int64]repo.Order, error)
	Get(ctx context.Context, id int64) (repo.Order, error)
	Pending(ctx context.Context, olderThan time.Duration, afterID int64, limit int) ([]repo.Order, error)
	Audit(ctx context.Context, sid int64) (repo.Audit, error)
}

// MaxBatch is the most orders one CreateOrders call may carry.
const MaxBatch = 1000

// Order implements pb.OrderServiceHandler.
type Order struct {
	store       Store
	stock       stockpb.StockService
	poke        func()
	sellTimeout time.Duration
	batch       *batch.Batcher[*pb.CreateRequest, *pb.Response]
}

// New returns the handler on store and stock; sellTimeout bounds each call to stock-srv.
// poke, if not nil, is called after an order was created, to wake the outbox relay. Close
// stops it.
func New(store Store, stock stockpb.StockService, poke func(), sellTimeout time.Duration) *Order {
	if poke == nil {
		poke = func() {}
	}
	h := &Order{store: store, stock: stock, poke: poke, sellTimeout: sellTimeout}
	h.batch = batch.New(4, 256, 2*sellTimeout+5*time.Second, h.createBatch)
	return h
}

// Close stops the handler's batching once the calls already queued have run.
func (h *Order) Close() { h.batch.Close() }

type badInput string

func (e badInput) Error() string { return string(e) }

var errNotYours = errors.New("not your order")

// CreateOrder records the order for the request id and takes its unit from stock-srv. The
// same request id always gets the same order back: a finished one as it is, a pending one
// after asking stock-srv again. If stock-srv cannot be asked, the order stays pending and
// the answer is error 503 "busy: order pending" with the order. Concurrent calls are run
// together in batches (see CreateOrders).
func (h *Order) CreateOrder(ctx context.Context, in *pb.CreateRequest, out *pb.Response) error {
	rsp, err := h.batch.Do(ctx, in)
	if err != nil {
		slog.ErrorContext(ctx, "create order", "request", in.RequestId, "err", err)
		return merrors.InternalServerError(Name, "storage unavailable")
	}
	proto.Merge(out, rsp)
	return nil
}

// CreateOrders answers each item as CreateOrder would, with a few statements and one
// StockService.SellBatch call for the whole batch.
func (h *Order) CreateOrders(ctx context.Context, in *pb.CreateBatchRequest, out *pb.CreateBatchResponse) error {
	if len(in.Items) > MaxBatch {
		return merrors.BadRequest(Name, "at most %d items per batch", MaxBatch)
	}
	rsps, err := h.createBatch(ctx, in.Items)
	if err != nil {
		slog.ErrorContext(ctx, "create orders", "items", len(in.Items), "err", err)
		return merrors.InternalServerError(Name, "storage unavailable")
	}
	out.Items = rsps
	return nil
}

func (h *Order) createBatch(ctx context.Context, items []*pb.CreateRequest) ([]*pb.Response, error) {
	rsps := make([]*pb.Response, len(items))
	orders := make([]repo.Order, len(items))
	var news []repo.NewOrder
	var newAt, lookAt []int
	var looks []string
	for i, in := range items {
		rsps[i] = &pb.Response{}
		if err := validate(in); err != nil {
			_ = fail(ctx, rsps[i], err)
			continue
		}
		if in.LookupOnly {
			looks, lookAt = append(looks, in.RequestId), append(lookAt, i)
		} else {
			news, newAt = append(news, repo.NewOrder{Sid: in.Sid, UserID: in.UserId, RequestID: in.RequestId}), append(newAt, i)
		}
	}
	if len(news) > 0 {
		os, errs, err := h.store.InsertBatch(ctx, news)
		if err != nil {
			return nil, err
		}
		for j, i := range newAt {
			if errs[j] != nil {
				rsps[i].Order = toProto(os[j])
				if err := fail(ctx, rsps[i], errs[j]); err != nil {
					return nil, errs[j]
				}
				continue
			}
			orders[i] = os[j]
		}
	}
	if len(looks) > 0 {
		found, err := h.store.FindByRequests(ctx, looks)
		if err != nil {
			return nil, err
		}
		for j, i := range lookAt {
			o, ok := found[looks[j]]
			switch {
			case !ok:
				_ = fail(ctx, rsps[i], repo.ErrNotFound)
			case o.Sid != items[i].Sid || o.UserID != items[i].UserId:
				_ = fail(ctx, rsps[i], repo.ErrRequestReused)
			default:
				orders[i] = o
			}
		}
	}
	// Finish the pending ones together; pending duplicates within the batch are asked once.
	var pending []repo.Order
	seen := map[int64]bool{}
	for _, o := range orders {
		if o.ID != 0 && o.State == repo.Pending && !seen[o.ID] {
			seen[o.ID] = true
			pending = append(pending, o)
		}
	}
	finished := map[int64]repo.Order{}
	if len(pending) > 0 {
		var err error
		if finished, err = h.finish(ctx, pending); err != nil {
			slog.WarnContext(ctx, "orders left pending", "orders", len(pending), "err", err)
		}
	}
	for i, o := range orders {
		if o.ID == 0 {
			// A refusal that shows an order ("already bought") shows it as it is now.
			if f, ok := finished[rsps[i].Order.GetId()]; ok {
				rsps[i].Order = toProto(f)
			}
			continue
		}
		if f, ok := finished[o.ID]; ok {
			o = f
		}
		answer(rsps[i], o)
	}
	return rsps, nil
}

func validate(in *pb.CreateRequest) error {
	switch {
	case in.Sid <= 0:
		return badInput("sid must be a positive integer")
	case in.UserId <= 0:
		return badInput("userId must be a positive integer")
	case in.RequestId == "" || len(in.RequestId) > MaxRequestID:
		return badInput("requestId must be 1 to 128 bytes")
	}
	return nil
}

// finish asks stock-srv, in one SellBatch call, for the units of pending orders and records
// the answers; it returns the orders it finished. On an error the orders stay pending (and
// are not returned). Racing callers are safe: the store changes only pending orders, and
// stock-srv answers a request id the same way every time.
func (h *Order) finish(ctx context.Context, pending []repo.Order) (map[int64]repo.Order, error) {
	req := &stockpb.SellBatchRequest{Items: make([]*stockpb.SellRequest, len(pending))}
	for i, o := range pending {
		req.Items[i] = &stockpb.SellRequest{Id: o.Sid, RequestId: o.RequestID, UserId: o.UserID}
	}
	sctx, cancel := context.WithTimeout(ctx, h.sellTimeout)
	rsp, err := h.stock.SellBatch(sctx, req)
	cancel()
	if err == nil && len(rsp.Items) != len(pending) {
		err = fmt.Errorf("stock-srv answered %d of %d", len(rsp.Items), len(pending))
	}
	if err != nil {
		return nil, fmt.Errorf("sell %d units: %w", len(pending), err)
	}
	var grants []repo.Grant
	var refusals []repo.Refusal
	for i, r := range rsp.Items {
		if r.GetSuccess() {
			grants = append(grants, repo.Grant{ID: pending[i].ID, Name: r.GetCommodity().GetName()})
			continue
		}
		reason := r.GetError().GetDetail()
		if reason == "" {
			reason = "refused"
		}
		refusals = append(refusals, repo.Refusal{ID: pending[i].ID, Reason: reason})
	}
	// Once stock-srv has answered, record it even if our caller has gone away.
	done, err := h.store.Finish(context.WithoutCancel(ctx), grants, refusals)
	if err != nil {
		return nil, err
	}
	if len(grants) > 0 {
		h.poke()
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
	out.Cancelled = a.Cancelled
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
