// Package handler is stock-srv's RPC edge: it checks input, calls the repo, and turns the
// repo's outcomes into the responses' outcome.Error, in one function, refusal.
package handler

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	merrors "go-micro.dev/v6/errors"
	"google.golang.org/protobuf/proto"

	"secbuy/basic/batch"
	"secbuy/basic/buyer"
	"secbuy/basic/db"
	"secbuy/basic/text"
	"secbuy/proto/outcome"
	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-srv/repo"
)

// Limits on input.
const (
	MaxNameLen   = 200
	MaxCount     = 1_000_000_000
	MaxRequestID = 128
	MaxList      = 1000
	MaxSellBatch = 1000 // items in one SellBatch call
	MaxRelease   = 1000 // items in one ReleaseBatch call
)

// How single Sell calls are batched: a few workers each take the calls waiting at the
// moment (up to sellBatchMax) into one repo.SellBatch transaction; a lone call runs at once.
// Batches of a hot commodity queue on its row, so few workers make bigger batches: on 2
// cores, 64 callers got about 19k units/s with 2 workers, 13k with 4, 6.5k with 8.
const (
	sellWorkers      = 2
	sellBatchMax     = 256
	sellBatchTimeout = 5 * time.Second
)

// Store is the storage the handler needs; repo.Repo is the real one.
type Store interface {
	Create(ctx context.Context, c repo.Commodity) (repo.Commodity, error)
	Get(ctx context.Context, id int64) (repo.Commodity, error)
	List(ctx context.Context, q repo.ListQuery) ([]repo.Commodity, error)
	SellBatch(ctx context.Context, items []repo.SellItem) ([]repo.SellResult, error)
	SoldOut(ctx context.Context, id int64) (bool, time.Duration, error)
	Audit(ctx context.Context, id int64) (repo.Audit, error)
	ReleaseBatch(ctx context.Context, requestIDs []string) ([]repo.ReleaseResult, error)
}

// Stock implements pb.StockServiceHandler.
type Stock struct {
	store Store
	sells *batch.Batcher[repo.SellItem, repo.SellResult]
	// DefaultBuckets is the buckets of a commodity created without a number of its own.
	DefaultBuckets int
}

// New returns the handler on store. It starts the workers that batch Sell calls; Close
// stops them.
func New(store Store) *Stock {
	return &Stock{store: store, sells: batch.New(sellWorkers, sellBatchMax, sellBatchTimeout, store.SellBatch), DefaultBuckets: 1}
}

// Close stops batching Sell calls, once those already queued are answered. Call it after
// the server has stopped taking requests; a Sell after Close fails as busy.
func (h *Stock) Close() { h.sells.Close() }

type badInput = outcome.InvalidInput

// CreateCommodity adds a commodity. A new commodity starts with sale 0: units are only
// ever sold through Sell, so that sale always equals the recorded sales.
func (h *Stock) CreateCommodity(ctx context.Context, in *pb.Commodity, out *pb.Response) error {
	c, err := validate(in)
	if err == nil {
		if c.Buckets == 0 {
			c.Buckets = h.DefaultBuckets
		}
		c, err = h.store.Create(ctx, c)
	}
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success, out.Commodity = true, toProto(c)
	return nil
}

func validate(in *pb.Commodity) (repo.Commodity, error) {
	name := strings.TrimSpace(in.Name)
	nameErr := text.Check("name", name, MaxNameLen)
	switch {
	case in.Id != 0:
		return repo.Commodity{}, badInput("id is assigned by the server; leave it out")
	case name == "":
		return repo.Commodity{}, badInput("name must not be empty")
	case nameErr != nil:
		return repo.Commodity{}, nameErr
	case in.Count <= 0 || in.Count > MaxCount:
		return repo.Commodity{}, badInput("count must be between 1 and 1000000000")
	case in.Sale < 0 || in.Sale > in.Count:
		return repo.Commodity{}, badInput("sale must be between 0 and count")
	case in.Sale != 0:
		return repo.Commodity{}, badInput("sale must be 0 for a new commodity: units are sold through Sell")
	case in.StartTime < 0 || in.EndTime < 0:
		return repo.Commodity{}, badInput("startTime and endTime must be unix seconds, or 0 for open")
	case in.StartTime != 0 && in.EndTime != 0 && in.EndTime <= in.StartTime:
		return repo.Commodity{}, badInput("endTime must be after startTime")
	case in.Buckets < 0 || in.Buckets > repo.MaxBuckets:
		return repo.Commodity{}, badInput("buckets must be between 1 and 64, or 0 for the default")
	}
	return repo.Commodity{Name: name, Count: in.Count, StartTime: unix(in.StartTime), EndTime: unix(in.EndTime),
		Buckets: int(in.Buckets), TicketRequired: in.TicketRequired}, nil
}

// GetCommodity returns one commodity.
func (h *Stock) GetCommodity(ctx context.Context, in *pb.Request, out *pb.Response) error {
	var c repo.Commodity
	err := error(badInput("id must be a positive integer"))
	if in.Id > 0 {
		c, err = h.store.Get(ctx, in.Id)
	}
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success, out.Commodity = true, toProto(c)
	return nil
}

// ListCommodities returns a page of commodities by id (see ListRequest); limit defaults
// to 100, at most 1000.
func (h *Stock) ListCommodities(ctx context.Context, in *pb.ListRequest, out *pb.ListResponse) error {
	if in.Offset < 0 || in.Limit < 0 || in.Limit > MaxList {
		out.Error = outcome.Invalid("offset must be >= 0 and limit between 0 and 1000")
		return nil
	}
	limit := int(in.Limit)
	if limit == 0 {
		limit = 100
	}
	cs, err := h.store.List(ctx, repo.ListQuery{Offset: int(in.Offset), Limit: limit, Newest: in.Newest, Current: in.Current})
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success = true
	for _, c := range cs {
		out.Commodities = append(out.Commodities, toProto(c))
	}
	return nil
}

// Sell grants one unit to the request id, or says why not (sold out, not started, ended).
// Concurrent calls are answered together, in one transaction per batch.
func (h *Stock) Sell(ctx context.Context, in *pb.SellRequest, out *pb.Response) error {
	item, err := validateSell(in)
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	res, err := h.sells.Do(ctx, item)
	if err != nil {
		return unavailable(ctx, err)
	}
	return answerSell(ctx, out, res)
}

// SellBatch answers each item as Sell would, in order, in one transaction. A bad item gets
// its 400 and is left out; more than MaxSellBatch items get a 400 each. If the transaction
// fails, the whole call fails (busy) and nothing was granted.
func (h *Stock) SellBatch(ctx context.Context, in *pb.SellBatchRequest, out *pb.SellBatchResponse) error {
	out.Items = make([]*pb.Response, len(in.Items))
	for i := range out.Items {
		out.Items[i] = &pb.Response{}
	}
	if len(in.Items) > MaxSellBatch {
		for _, r := range out.Items {
			r.Error = outcome.Invalid("a batch holds at most 1000 items")
		}
		return nil
	}
	items := make([]repo.SellItem, 0, len(in.Items))
	at := make([]int, 0, len(in.Items)) // where each of items came from
	for i, req := range in.Items {
		item, err := validateSell(req)
		if err != nil {
			out.Items[i].Error = outcome.Of(err, nil)
			continue
		}
		items, at = append(items, item), append(at, i)
	}
	if len(items) == 0 {
		return nil
	}
	res, err := h.store.SellBatch(ctx, items)
	if err == nil && len(res) != len(items) {
		err = errors.New("wrong number of answers")
	}
	if err != nil {
		out.Items = nil
		return unavailable(ctx, err)
	}
	for j, i := range at {
		if err := answerSell(ctx, out.Items[i], res[j]); err != nil {
			return err
		}
	}
	return nil
}

// validateSell checks a sell request. The request id must also be text Postgres can store
// (UTF-8 without NUL): one that is not would fail the whole batch it travels in.
func validateSell(in *pb.SellRequest) (repo.SellItem, error) {
	rid := in.GetRequestId()
	switch {
	case in.GetId() <= 0:
		return repo.SellItem{}, badInput("id must be a positive integer")
	}
	b, err := buyer.Of(in.GetBuyer(), in.GetUserId())
	switch {
	case err != nil:
		return repo.SellItem{}, badInput(err.Error())
	case !validRequestID(rid):
		return repo.SellItem{}, badInput("requestId must be 1 to 128 bytes of UTF-8 text")
	}
	return repo.SellItem{ID: in.GetId(), RequestID: rid, Buyer: b}, nil
}

func validRequestID(rid string) bool {
	return rid != "" && len(rid) <= MaxRequestID && text.Check("requestId", rid, 0) == nil
}

func answerSell(ctx context.Context, out *pb.Response, res repo.SellResult) error {
	out.Commodity = toProto(res.Commodity)
	if res.Err != nil {
		var err error
		out.Error, err = refusal(ctx, res.Err)
		return err
	}
	out.Success = true
	return nil
}

// Audit reports count, sale and live granted sales, for the invariant checks.
func (h *Stock) Audit(ctx context.Context, in *pb.Request, out *pb.AuditResponse) error {
	a, err := h.store.Audit(ctx, in.Id)
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success, out.Count, out.Sale, out.Granted, out.Released = true, a.Count, a.Sale, a.Granted, a.Released
	return nil
}

// SoldOut says whether a commodity is sold out and, if so, for how long at least it stays
// so (see repo.SoldOut): an edge may answer "sold out" from memory for that long.
func (h *Stock) SoldOut(ctx context.Context, in *pb.Request, out *pb.SoldOutResponse) error {
	err := error(badInput("id must be a positive integer"))
	var soldOut bool
	var validFor time.Duration
	if in.Id > 0 {
		soldOut, validFor, err = h.store.SoldOut(ctx, in.Id)
	}
	if err != nil {
		out.Error, err = refusal(ctx, err)
		return err
	}
	out.Success, out.SoldOut, out.ValidForMs = true, soldOut, validFor.Milliseconds()
	return nil
}

// Release gives back the unit granted to a request id (its order was cancelled). It is
// idempotent: the unit goes back on sale once; a later call is a success with released
// false. An unknown request id is 404, a refused sale 409.
func (h *Stock) Release(ctx context.Context, in *pb.ReleaseRequest, out *pb.ReleaseResponse) error {
	var rsp pb.ReleaseBatchResponse
	if err := h.ReleaseBatch(ctx, &pb.ReleaseBatchRequest{Items: []*pb.ReleaseRequest{in}}, &rsp); err != nil {
		return err
	}
	proto.Merge(out, rsp.Items[0])
	return nil
}

// ReleaseBatch answers each item as Release would, in order, in one transaction. A bad item
// gets its 400 and is left out; more than MaxRelease items get a 400 each. If the
// transaction fails, the whole call fails (busy) and nothing was released.
func (h *Stock) ReleaseBatch(ctx context.Context, in *pb.ReleaseBatchRequest, out *pb.ReleaseBatchResponse) error {
	out.Items = make([]*pb.ReleaseResponse, len(in.Items))
	var rids []string
	var at []int // where each of rids came from
	for i, req := range in.Items {
		out.Items[i] = &pb.ReleaseResponse{}
		switch {
		case len(in.Items) > MaxRelease:
			out.Items[i].Error = outcome.Invalid("a batch holds at most 1000 items")
		case !validRequestID(req.GetRequestId()):
			out.Items[i].Error = outcome.Invalid("requestId must be 1 to 128 bytes of UTF-8 text")
		default:
			rids, at = append(rids, req.GetRequestId()), append(at, i)
		}
	}
	if len(rids) == 0 {
		return nil
	}
	res, err := h.store.ReleaseBatch(ctx, rids)
	if err == nil && len(res) != len(rids) {
		err = errors.New("wrong number of answers")
	}
	if err != nil {
		out.Items = nil
		return unavailable(ctx, err)
	}
	for j, i := range at {
		r, o := res[j], out.Items[i]
		o.CommodityId = r.Sid
		if r.Err != nil {
			if o.Error, err = refusal(ctx, r.Err); err != nil {
				out.Items = nil
				return err
			}
			continue
		}
		o.Success, o.Released = true, r.Released
	}
	return nil
}

// refusals are the repo's outcomes that callers branch on, and their reasons.
var refusals = []outcome.Rule{
	{Err: repo.ErrNotFound, Reason: outcome.Reason_COMMODITY_NOT_FOUND},
	{Err: repo.ErrSoldOut, Reason: outcome.Reason_SOLD_OUT},
	{Err: repo.ErrNotStarted, Reason: outcome.Reason_NOT_STARTED},
	{Err: repo.ErrEnded, Reason: outcome.Reason_ENDED},
	{Err: repo.ErrRequestReused, Reason: outcome.Reason_REQUEST_REUSED},
	{Err: repo.ErrNoSale, Reason: outcome.Reason_NO_SALE},
	{Err: repo.ErrNotGranted, Reason: outcome.Reason_NOT_GRANTED},
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
	return nil, unavailable(ctx, err)
}

// unavailable logs err and returns the RPC error that callers treat as "busy".
func unavailable(ctx context.Context, err error) error {
	slog.ErrorContext(ctx, "stock call failed", "err", err)
	return merrors.InternalServerError(pb.Name, "storage unavailable")
}

func toProto(c repo.Commodity) *pb.Commodity {
	if c.ID == 0 {
		return nil
	}
	p := &pb.Commodity{Id: c.ID, Name: c.Name, Count: c.Count, Sale: c.Sale, CreateTime: c.CreateTime.Unix(), Left: c.Left(time.Now()),
		Buckets: int32(c.Buckets), TicketRequired: c.TicketRequired}
	if c.StartTime != nil {
		p.StartTime = c.StartTime.Unix()
	}
	if c.EndTime != nil {
		p.EndTime = c.EndTime.Unix()
	}
	return p
}

func unix(s int64) *time.Time {
	if s == 0 {
		return nil
	}
	t := time.Unix(s, 0)
	return &t
}
