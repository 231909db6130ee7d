// Package handler is stock-srv's RPC edge: it checks input, calls the repo, and turns the
// repo's outcomes into the Response error codes (HTTP-like: 400, 404, 409).
package handler

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	merrors "go-micro.dev/v6/errors"
	"google.golang.org/protobuf/proto"

	"secbuy/basic/batch"
	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-srv/repo"
)

// Name is stock-srv's registry name.
const Name = "go.micro.secbuy.srv.stock"

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
	List(ctx context.Context, offset, limit int) ([]repo.Commodity, error)
	SellBatch(ctx context.Context, items []repo.SellItem) ([]repo.SellResult, error)
	Audit(ctx context.Context, id int64) (repo.Audit, error)
	ReleaseBatch(ctx context.Context, requestIDs []string) ([]repo.ReleaseResult, error)
}

// Stock implements pb.StockServiceHandler.
type Stock struct {
	store Store
	sells *batch.Batcher[repo.SellItem, repo.SellResult]
}

// New returns the handler on store. It starts the workers that batch Sell calls; Close
// stops them.
func New(store Store) *Stock {
	return &Stock{store: store, sells: batch.New(sellWorkers, sellBatchMax, sellBatchTimeout, store.SellBatch)}
}

// Close stops batching Sell calls, once those already queued are answered. Call it after
// the server has stopped taking requests; a Sell after Close fails as busy.
func (h *Stock) Close() { h.sells.Close() }

type badInput string

func (e badInput) Error() string { return string(e) }

// CreateCommodity adds a commodity. A new commodity starts with sale 0: units are only
// ever sold through Sell, so that sale always equals the recorded sales.
func (h *Stock) CreateCommodity(ctx context.Context, in *pb.Commodity, out *pb.Response) error {
	c, err := validate(in)
	if err != nil {
		return fail(ctx, out, err)
	}
	c, err = h.store.Create(ctx, c)
	if err != nil {
		return fail(ctx, out, err)
	}
	out.Success, out.Commodity = true, toProto(c)
	return nil
}

func validate(in *pb.Commodity) (repo.Commodity, error) {
	name := strings.TrimSpace(in.Name)
	switch {
	case in.Id != 0:
		return repo.Commodity{}, badInput("id is assigned by the server; leave it out")
	case name == "":
		return repo.Commodity{}, badInput("name must not be empty")
	case !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen:
		return repo.Commodity{}, badInput("name must be valid UTF-8 of at most 200 characters")
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
	}
	return repo.Commodity{Name: name, Count: in.Count, StartTime: unix(in.StartTime), EndTime: unix(in.EndTime)}, nil
}

// GetCommodity returns one commodity.
func (h *Stock) GetCommodity(ctx context.Context, in *pb.Request, out *pb.Response) error {
	if in.Id <= 0 {
		return fail(ctx, out, badInput("id must be a positive integer"))
	}
	c, err := h.store.Get(ctx, in.Id)
	if err != nil {
		return fail(ctx, out, err)
	}
	out.Success, out.Commodity = true, toProto(c)
	return nil
}

// ListCommodities returns commodities by id; limit defaults to 100, at most 1000.
func (h *Stock) ListCommodities(ctx context.Context, in *pb.ListRequest, out *pb.ListResponse) error {
	if in.Offset < 0 || in.Limit < 0 || in.Limit > MaxList {
		out.Error = &pb.Error{Code: 400, Detail: "offset must be >= 0 and limit between 0 and 1000"}
		return nil
	}
	limit := int(in.Limit)
	if limit == 0 {
		limit = 100
	}
	cs, err := h.store.List(ctx, int(in.Offset), limit)
	if err != nil {
		slog.ErrorContext(ctx, "list commodities", "err", err)
		return merrors.InternalServerError(Name, "storage unavailable")
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
		return fail(ctx, out, err)
	}
	res, err := h.sells.Do(ctx, item)
	if err != nil {
		return fail(ctx, out, err)
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
			_ = fail(ctx, r, badInput("a batch holds at most 1000 items"))
		}
		return nil
	}
	items := make([]repo.SellItem, 0, len(in.Items))
	at := make([]int, 0, len(in.Items)) // where each of items came from
	for i, req := range in.Items {
		item, err := validateSell(req)
		if err != nil {
			_ = fail(ctx, out.Items[i], err)
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
	case in.GetUserId() <= 0:
		return repo.SellItem{}, badInput("userId must be a positive integer")
	case !validRequestID(rid):
		return repo.SellItem{}, badInput("requestId must be 1 to 128 bytes of UTF-8 text")
	}
	return repo.SellItem{ID: in.GetId(), RequestID: rid, UserID: in.GetUserId()}, nil
}

func validRequestID(rid string) bool {
	return rid != "" && len(rid) <= MaxRequestID && utf8.ValidString(rid) && !strings.ContainsRune(rid, 0)
}

func answerSell(ctx context.Context, out *pb.Response, res repo.SellResult) error {
	out.Commodity = toProto(res.Commodity)
	if res.Err != nil {
		return fail(ctx, out, res.Err)
	}
	out.Success = true
	return nil
}

// Audit reports count, sale and live granted sales, for the invariant checks.
func (h *Stock) Audit(ctx context.Context, in *pb.Request, out *pb.AuditResponse) error {
	a, err := h.store.Audit(ctx, in.Id)
	var r pb.Response
	if err != nil {
		ferr := fail(ctx, &r, err)
		out.Error = r.Error
		return ferr
	}
	out.Success, out.Count, out.Sale, out.Granted, out.Released = true, a.Count, a.Sale, a.Granted, a.Released
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
			out.Items[i].Error = &pb.Error{Code: 400, Detail: "a batch holds at most 1000 items"}
		case !validRequestID(req.GetRequestId()):
			out.Items[i].Error = &pb.Error{Code: 400, Detail: "requestId must be 1 to 128 bytes of UTF-8 text"}
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
		switch {
		case r.Err == nil:
			o.Success, o.Released = true, r.Released
		case errors.Is(r.Err, repo.ErrNoSale):
			o.Error = &pb.Error{Code: 404, Detail: r.Err.Error()}
		case errors.Is(r.Err, repo.ErrNotGranted):
			o.Error = &pb.Error{Code: 409, Detail: r.Err.Error()}
		default:
			out.Items = nil
			return unavailable(ctx, r.Err)
		}
	}
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
	case errors.Is(err, repo.ErrNotFound):
		code = 404
	case errors.Is(err, repo.ErrSoldOut), errors.Is(err, repo.ErrNotStarted),
		errors.Is(err, repo.ErrEnded), errors.Is(err, repo.ErrRequestReused):
		code = 409
	default:
		return unavailable(ctx, err)
	}
	out.Success = false
	out.Error = &pb.Error{Code: code, Detail: err.Error()}
	return nil
}

// unavailable logs err and returns the RPC error that callers treat as "busy".
func unavailable(ctx context.Context, err error) error {
	slog.ErrorContext(ctx, "stock call failed", "err", err)
	return merrors.InternalServerError(Name, "storage unavailable")
}

func toProto(c repo.Commodity) *pb.Commodity {
	if c.ID == 0 {
		return nil
	}
	p := &pb.Commodity{Id: c.ID, Name: c.Name, Count: c.Count, Sale: c.Sale, CreateTime: c.CreateTime.Unix()}
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
