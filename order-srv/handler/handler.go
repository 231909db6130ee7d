// Package handler is order-srv's RPC edge: it checks input, records the order, asks
// stock-srv for the unit, and turns the outcomes into the responses' outcome.Error, in one
// function, refusal (and, for an order, answer).
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
	"secbuy/basic/buyer"
	"secbuy/basic/db"
	"secbuy/basic/logs"
	"secbuy/basic/metrics"
	"secbuy/basic/text"
	"secbuy/basic/tracing"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-srv/repo"
	"secbuy/proto/outcome"
	stockpb "secbuy/stock-srv/proto/stock"
)

// MaxRequestID is the longest request id accepted, in bytes (stock-srv's limit too).
const MaxRequestID = 128

// Store is the storage the handler needs; repo.Repo is the real one.
type Store interface {
	InsertBatch(ctx context.Context, items []repo.NewOrder) ([]repo.Order, []error, error)
	FindByRequests(ctx context.Context, requestIDs []string) (map[string]repo.Order, error)
	Finish(ctx context.Context, grants []repo.Grant, refusals []repo.Refusal) (map[int64]repo.Order, error)
	Get(ctx context.Context, id int64) (repo.Order, error)
	Pending(ctx context.Context, olderThan time.Duration, afterID int64, limit int) ([]repo.Order, error)
	Audit(ctx context.Context, sid int64) (repo.Audit, error)
	Holders(ctx context.Context, sid int64) ([]string, error)
	ListByUser(ctx context.Context, buyer string, offset, limit int64) ([]repo.Order, bool, error)
}

// MaxBatch is the most orders one CreateOrders call may carry.
const MaxBatch = 1000

// MaxList is the most orders one ListOrders page may hold; DefaultList is the page size
// of a request that names none.
const (
	MaxList     = 100
	DefaultList = 20
)

// Order implements pb.OrderServiceHandler.
type Order struct {
	store       Store
	stock       stockpb.StockService
	poke        func()
	sellTimeout time.Duration
	batch       *batch.Batcher[*pb.CreateRequest, *pb.Response]
	finisher    *finisher
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
	h.finisher = newFinisher(store, poke, 2*sellTimeout+5*time.Second)
	return h
}

// Close stops the handler's batching once the calls already queued have run, and then the
// finisher, once it has recorded what they left it.
func (h *Order) Close() {
	h.batch.Close()
	h.finisher.close()
}

type badInput = outcome.InvalidInput

var errNotYours = errors.New("not your order")

// CreateOrder records the order for the request id and takes its unit from stock-srv. The
// same request id always gets the same order back: a finished one as it is, a pending one
// after asking stock-srv again. If stock-srv cannot be asked, the order stays pending and
// the answer is the refusal ORDER_PENDING, with the order. Concurrent calls are run
// together in batches (see CreateOrders).
func (h *Order) CreateOrder(ctx context.Context, in *pb.CreateRequest, out *pb.Response) error {
	ctx = logs.With(ctx, "commodity", in.Sid, "request", in.RequestId)
	if in.Traceparent == "" {
		in.Traceparent = tracing.Traceparent(ctx)
	}
	rsp, err := h.batch.Do(ctx, in)
	if err != nil {
		return unavailable(ctx, fmt.Errorf("create order %s: %w", in.RequestId, err))
	}
	proto.Merge(out, rsp)
	return nil
}

// CreateOrders answers each item as CreateOrder would, with a few statements and one
// StockService.SellBatch call for the whole batch.
func (h *Order) CreateOrders(ctx context.Context, in *pb.CreateBatchRequest, out *pb.CreateBatchResponse) error {
	if len(in.Items) > MaxBatch {
		return merrors.BadRequest(pb.Name, "at most %d items per batch", MaxBatch)
	}
	if tp := tracing.Traceparent(ctx); tp != "" {
		for _, it := range in.Items {
			if it.Traceparent == "" { // a caller that does not trace each press (an older order-web)
				it.Traceparent = tp
			}
		}
	}
	rsps, err := h.createBatch(ctx, in.Items)
	if err != nil {
		return unavailable(ctx, fmt.Errorf("create %d orders: %w", len(in.Items), err))
	}
	out.Items = rsps
	return nil
}

// createBatch answers each item as CreateOrder would, step by step (DESIGN.md, steps 2 and
// 4): record the new orders as pending, look up the orders of lookup-only items, finish
// the pending ones with one SellBatch call, and answer each item with its order.
func (h *Order) createBatch(ctx context.Context, items []*pb.CreateRequest) ([]*pb.Response, error) {
	b := &orderBatch{items: items, rsps: make([]*pb.Response, len(items)), orders: make([]repo.Order, len(items))}
	for i := range b.rsps {
		b.rsps[i] = &pb.Response{}
	}
	if err := h.insert(ctx, b); err != nil {
		return nil, err
	}
	if err := h.lookUp(ctx, b); err != nil {
		return nil, err
	}
	for i := range b.orders {
		b.orders[i].Traceparent = b.items[i].Traceparent
	}
	finished := h.finishPending(ctx, b.orders)
	for i, o := range b.orders {
		if o.ID == 0 {
			// A refusal that shows an order ("already bought") shows it as it is now.
			if f, ok := finished[b.rsps[i].Order.GetId()]; ok {
				b.rsps[i].Order = toProto(f)
			}
			continue
		}
		if f, ok := finished[o.ID]; ok {
			o = f
		}
		answer(b.rsps[i], o)
	}
	return b.rsps, nil
}

// orderBatch is one createBatch: the items, their answers so far, and the order each one
// stands for (zero while it has none, or once it was refused).
type orderBatch struct {
	items  []*pb.CreateRequest
	rsps   []*pb.Response
	orders []repo.Order
}

// insert records a pending order for each valid item that may create one; an item refused
// (bad input, already bought, request id reused) gets its answer now.
func (h *Order) insert(ctx context.Context, b *orderBatch) error {
	var news []repo.NewOrder
	var at []int
	for i, in := range b.items {
		who, err := validate(in)
		if err != nil {
			b.rsps[i].Error = outcome.Of(err, nil)
			continue
		}
		if !in.LookupOnly {
			news, at = append(news, repo.NewOrder{Sid: in.Sid, Buyer: who, RequestID: in.RequestId}), append(at, i)
		}
	}
	if len(news) == 0 {
		return nil
	}
	os, errs, err := h.store.InsertBatch(ctx, news)
	if err != nil {
		return err
	}
	for j, i := range at {
		if errs[j] == nil {
			b.orders[i] = os[j]
			continue
		}
		b.rsps[i].Order = toProto(os[j])
		if b.rsps[i].Error, err = refusal(ctx, errs[j]); err != nil {
			return errs[j]
		}
	}
	return nil
}

// lookUp finds the orders of the valid lookup-only items: 404 if there is none, and a
// refusal if the request id was used for another purchase.
func (h *Order) lookUp(ctx context.Context, b *orderBatch) error {
	var looks []string
	var at []int
	for i, in := range b.items {
		if in.LookupOnly && b.rsps[i].Error == nil {
			looks, at = append(looks, in.RequestId), append(at, i)
		}
	}
	if len(looks) == 0 {
		return nil
	}
	found, err := h.store.FindByRequests(ctx, looks)
	if err != nil {
		return err
	}
	for j, i := range at {
		o, ok := found[looks[j]]
		who, _ := validate(b.items[i]) // valid: the invalid ones were answered already
		switch {
		case !ok:
			b.rsps[i].Error = outcome.Refuse(outcome.Reason_ORDER_NOT_FOUND)
		case o.Sid != b.items[i].Sid || o.Buyer != who:
			b.rsps[i].Error = outcome.Refuse(outcome.Reason_REQUEST_REUSED)
		default:
			b.orders[i] = o
		}
	}
	return nil
}

// finishPending finishes the pending orders among orders together (a pending order
// that several items share is asked once) and returns those it finished; the others stay
// pending for recovery.
func (h *Order) finishPending(ctx context.Context, orders []repo.Order) map[int64]repo.Order {
	var pending []repo.Order
	seen := map[int64]bool{}
	for _, o := range orders {
		if o.ID != 0 && o.State == repo.Pending && !seen[o.ID] {
			seen[o.ID] = true
			pending = append(pending, o)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	finished, err := h.finish(ctx, pending, false)
	if err != nil {
		slog.WarnContext(ctx, "orders left pending", "orders", len(pending), "err", err)
	}
	return finished
}

// validate checks a create request and returns its buyer.
func validate(in *pb.CreateRequest) (string, error) {
	if in.Sid <= 0 {
		return "", badInput("sid must be a positive integer")
	}
	who, err := buyer.Of(in.Buyer, in.UserId)
	switch {
	case err != nil:
		return "", badInput(err.Error())
	case in.RequestId == "" || len(in.RequestId) > MaxRequestID:
		return "", badInput("requestId must be 1 to 128 bytes")
	}
	// Both go into the database (the traceparent with the payment event): a value it
	// cannot store would fail the whole batch the item travels in.
	if err := text.Check("requestId", in.RequestId, 0); err != nil {
		return "", err
	}
	if err := text.Check("traceparent", in.Traceparent, 512); err != nil {
		return "", err
	}
	return who, nil
}

// finish asks stock-srv, in one SellBatch call, for the units of pending orders, and
// returns the orders as stock-srv's answers make them (created, or failed with the reason).
// Recording that is the finisher's, in the background, unless wait is set (recovery), when
// it is recorded before finish returns. On an error the orders stay pending (and are not
// returned). Racing callers are safe: the store changes only pending orders, and stock-srv
// answers a request id the same way every time.
func (h *Order) finish(ctx context.Context, pending []repo.Order, wait bool) (_ map[int64]repo.Order, err error) {
	metrics.BatchSize.WithLabelValues("sell").Observe(float64(len(pending)))
	req := &stockpb.SellBatchRequest{Items: make([]*stockpb.SellRequest, len(pending))}
	for i, o := range pending {
		req.Items[i] = &stockpb.SellRequest{Id: o.Sid, RequestId: o.RequestID, UserId: buyer.ID(o.Buyer), Buyer: o.Buyer}
	}
	ctx, span := tracing.StartBatch(ctx, "order-srv SellBatch", len(pending), func(i int) string { return pending[i].Traceparent })
	defer func() { tracing.End(span, err) }()
	sctx, cancel := context.WithTimeout(ctx, h.sellTimeout)
	rsp, err := h.stock.SellBatch(sctx, req)
	cancel()
	if err == nil && len(rsp.Items) != len(pending) {
		err = fmt.Errorf("stock-srv answered %d of %d", len(rsp.Items), len(pending))
	}
	if err != nil {
		return nil, fmt.Errorf("sell %d units: %w", len(pending), err)
	}
	items := make([]finishItem, len(pending))
	done := make(map[int64]repo.Order, len(pending))
	for i, r := range rsp.Items {
		o := pending[i]
		if r.GetSuccess() {
			o.State, o.Name = repo.Created, r.GetCommodity().GetName()
			items[i] = finishItem{id: o.ID, granted: true, name: o.Name, traceparent: o.Traceparent}
		} else {
			o.State, o.Reason = repo.Failed, r.GetError().GetReason().String()
			items[i] = finishItem{id: o.ID, reason: o.Reason, traceparent: o.Traceparent}
		}
		done[o.ID] = o
	}
	if !wait {
		h.finisher.add(items)
		return done, nil
	}
	// Once stock-srv has answered, record it even if our caller has gone away.
	return h.finisher.record(context.WithoutCancel(ctx), items)
}

// answer puts order o's outcome into out: created is a success; failed carries the reason
// stock-srv gave; cancelled is ORDER_CANCELLED; pending is ORDER_PENDING.
func answer(out *pb.Response, o repo.Order) {
	out.Order = toProto(o)
	switch o.State {
	case repo.Created:
		out.Success = true
	case repo.Failed:
		out.Error = outcome.Refuse(reasonOf(o))
	case repo.Cancelled:
		out.Error = outcome.Refuse(outcome.Reason_ORDER_CANCELLED)
	default:
		out.Error = outcome.Refuse(outcome.Reason_ORDER_PENDING)
	}
}

// GetOrder returns the user's own order.
func (h *Order) GetOrder(ctx context.Context, in *pb.GetRequest, out *pb.Response) error {
	ctx = logs.With(ctx, "order", in.Id)
	var o repo.Order
	who, err := buyer.Of(in.Buyer, in.UserId)
	switch {
	case in.Id <= 0:
		err = badInput("id must be a positive integer")
	case err != nil:
		err = badInput(err.Error())
	default:
		o, err = h.store.Get(ctx, in.Id)
	}
	if err == nil && o.Buyer != who {
		err = errNotYours
	}
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success, out.Order = true, toProto(o)
	return nil
}

// ListOrders returns a page of the user's own orders, newest first, of every state, each
// as GetOrder shows it; more says there are orders after the page.
func (h *Order) ListOrders(ctx context.Context, in *pb.ListRequest, out *pb.ListResponse) error {
	limit := in.Limit
	if limit == 0 {
		limit = DefaultList
	}
	var os []repo.Order
	var more bool
	who, err := buyer.Of(in.Buyer, in.UserId)
	switch {
	case err != nil:
		err = badInput(err.Error())
	case in.Offset < 0:
		err = badInput("offset must not be negative")
	case limit < 0 || limit > MaxList:
		err = badInput(fmt.Sprintf("limit must be 0 to %d", MaxList))
	default:
		os, more, err = h.store.ListByUser(ctx, who, in.Offset, limit)
	}
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success, out.More = true, more
	out.Orders = make([]*pb.Order, len(os))
	for i, o := range os {
		out.Orders[i] = toProto(o)
	}
	return nil
}

// Holders says whether commodity in.Sid is sold out and, if so, who holds its units (every
// user with a live order) and for how long at least nobody else can get one: stock-srv's
// answer comes first, then the orders are read, so an order made after the read needs a
// unit that comes back later than validForMs (a returned unit is held that long). A press
// by anyone else may be answered "sold out" from memory until then.
func (h *Order) Holders(ctx context.Context, in *pb.HoldersRequest, out *pb.HoldersResponse) error {
	if in.Sid <= 0 {
		out.Error = outcome.Invalid("sid must be a positive integer")
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, h.sellTimeout)
	so, err := h.stock.SoldOut(sctx, &stockpb.Request{Id: in.Sid})
	cancel()
	if err != nil {
		return err // stock-srv's own failure: the caller goes on without a snapshot
	}
	if !so.GetSoldOut() {
		out.Success, out.Error = so.GetSuccess(), so.GetError()
		return nil
	}
	users, err := h.store.Holders(ctx, in.Sid)
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success, out.SoldOut, out.ValidForMs, out.Buyers = true, true, so.GetValidForMs(), users
	for _, u := range users {
		if id := buyer.ID(u); id > 0 {
			out.Users = append(out.Users, id)
		}
	}
	return nil
}

// Audit counts a commodity's orders, for the invariant checks.
func (h *Order) Audit(ctx context.Context, in *pb.AuditRequest, out *pb.AuditResponse) error {
	var a repo.Audit
	err := error(badInput("sid must be a positive integer"))
	if in.Sid > 0 {
		a, err = h.store.Audit(ctx, in.Sid)
	}
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success = true
	out.Live, out.Pending, out.Failed = a.Live, a.Pending, a.Failed
	out.UsersWithTwoLive, out.LiveIdSum, out.Unsent = a.UsersWithTwoLive, a.LiveIDSum, a.Unsent
	out.Cancelled = a.Cancelled
	return nil
}

// refusals are the outcomes that callers branch on, and their reasons.
var refusals = []outcome.Rule{
	{Err: errNotYours, Reason: outcome.Reason_NOT_YOURS},
	{Err: repo.ErrNotFound, Reason: outcome.Reason_ORDER_NOT_FOUND},
	{Err: repo.ErrAlreadyBought, Reason: outcome.Reason_ALREADY_BOUGHT},
	{Err: repo.ErrRequestReused, Reason: outcome.Reason_REQUEST_REUSED},
}

// refusal maps an outcome, or bad input, to the refusal callers see. Anything else is
// logged and returned as an RPC error, which callers treat as "busy".
func refusal(ctx context.Context, err error) (*outcome.Error, error) {
	if e := outcome.Of(err, refusals); e != nil {
		return e, nil
	}
	if e := db.Refusal(err); e != nil {
		return e, nil
	}
	return nil, unavailable(ctx, err)
}

// unavailable logs err and returns the RPC error that callers treat as "busy".
func unavailable(ctx context.Context, err error) error {
	slog.ErrorContext(ctx, "order call failed", "err", err)
	return merrors.InternalServerError(pb.Name, "storage unavailable")
}

// legacyReasons are the words that order-srv stored as a failed order's reason before the
// reason codes (migrations 002 and 003 convert them; a binary from before may still write
// them while an upgrade rolls through).
var legacyReasons = map[string]outcome.Reason{
	"sold out": outcome.Reason_SOLD_OUT, "not started": outcome.Reason_NOT_STARTED, "ended": outcome.Reason_ENDED,
	"commodity not found": outcome.Reason_COMMODITY_NOT_FOUND, "payment expired": outcome.Reason_PAYMENT_EXPIRED,
	"request id already used for another purchase": outcome.Reason_REQUEST_REUSED,
}

// reasonOf is why order o failed (or was cancelled).
func reasonOf(o repo.Order) outcome.Reason {
	if r, ok := legacyReasons[o.Reason]; ok {
		return r
	}
	return outcome.Parse(o.Reason)
}

func toProto(o repo.Order) *pb.Order {
	if o.ID == 0 {
		return nil
	}
	return &pb.Order{Id: o.ID, Sid: o.Sid, Name: o.Name, CreateTime: o.CreateTime.Unix(), UserId: buyer.ID(o.Buyer),
		Buyer: o.Buyer, RequestId: o.RequestID, State: o.State, Failure: reasonOf(o)}
}
