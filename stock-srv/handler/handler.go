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
)

// Store is the storage the handler needs; repo.Repo is the real one.
type Store interface {
	Create(ctx context.Context, c repo.Commodity) (repo.Commodity, error)
	Get(ctx context.Context, id int64) (repo.Commodity, error)
	List(ctx context.Context, offset, limit int) ([]repo.Commodity, error)
	Sell(ctx context.Context, id int64, requestID string, userID int64) (repo.Commodity, error)
	Audit(ctx context.Context, id int64) (repo.Audit, error)
}

// Stock implements pb.StockServiceHandler.
type Stock struct {
	store Store
}

// New returns the handler on store.
func New(store Store) *Stock { return &Stock{store: store} }

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
func (h *Stock) Sell(ctx context.Context, in *pb.SellRequest, out *pb.Response) error {
	switch {
	case in.Id <= 0:
		return fail(ctx, out, badInput("id must be a positive integer"))
	case in.UserId <= 0:
		return fail(ctx, out, badInput("userId must be a positive integer"))
	case in.RequestId == "" || len(in.RequestId) > MaxRequestID:
		return fail(ctx, out, badInput("requestId must be 1 to 128 bytes"))
	}
	c, err := h.store.Sell(ctx, in.Id, in.RequestId, in.UserId)
	out.Commodity = toProto(c)
	if err != nil {
		return fail(ctx, out, err)
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
	out.Success, out.Count, out.Sale, out.Granted = true, a.Count, a.Sale, a.Granted
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
		slog.ErrorContext(ctx, "stock call failed", "err", err)
		return merrors.InternalServerError(Name, "storage unavailable")
	}
	out.Success = false
	out.Error = &pb.Error{Code: code, Detail: err.Error()}
	return nil
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
