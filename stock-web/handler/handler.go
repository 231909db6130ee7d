// Package handler is stock-web's HTTP edge: JSON in, StockService RPC, JSON out.
package handler

import (
	"context"
	"crypto/subtle"
	"log/slog"
	"net/http"
	"strconv"

	"secbuy/basic/httpapi"
	pb "secbuy/stock-srv/proto/stock"
)

// Name is stock-web's registry name.
const Name = "go.micro.secbuy.web.stock"

// Commodity is the JSON form of a commodity (times in unix seconds, 0 = open).
type Commodity struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Count      int64  `json:"count"`
	Sale       int64  `json:"sale"`
	CreateTime int64  `json:"createTime"`
	StartTime  int64  `json:"startTime"`
	EndTime    int64  `json:"endTime"`
}

// FromProto converts the RPC form.
func FromProto(c *pb.Commodity) *Commodity {
	if c == nil {
		return nil
	}
	return &Commodity{ID: c.Id, Name: c.Name, Count: c.Count, Sale: c.Sale,
		CreateTime: c.CreateTime, StartTime: c.StartTime, EndTime: c.EndTime}
}

// Handler serves /stock/*.
type Handler struct {
	stock    pb.StockService
	adminKey string
	maxBody  int64
	cache    *getCache
}

// New returns the handler. adminKey guards /stock/create; maxBody caps request bodies.
func New(stock pb.StockService, adminKey string, maxBody int64) *Handler {
	return &Handler{stock: stock, adminKey: adminKey, maxBody: maxBody, cache: newGetCache(CacheTTL)}
}

// Routes returns the service's whole HTTP surface.
func (h *Handler) Routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stock/create", httpapi.Route(http.MethodPost, h.create))
	mux.HandleFunc("/stock/get", httpapi.Route(http.MethodGet, h.get))
	mux.HandleFunc("/stock/list", httpapi.Route(http.MethodGet, h.list))
	return httpapi.Recover(mux)
}

type createBody struct {
	Name      string `json:"name"`
	Count     int64  `json:"count"`
	Sale      int64  `json:"sale"`
	StartTime int64  `json:"startTime"`
	EndTime   int64  `json:"endTime"`
}

// create is admin only: the X-Admin-Key header must carry the configured key.
func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	key := r.Header.Get("X-Admin-Key")
	if h.adminKey == "" || subtle.ConstantTimeCompare([]byte(key), []byte(h.adminKey)) != 1 {
		httpapi.Fail(w, httpapi.Errorf(http.StatusUnauthorized, "admin key required (X-Admin-Key)"))
		return
	}
	var b createBody
	if e := httpapi.Decode(w, r, h.maxBody, &b); e != nil {
		httpapi.Fail(w, e)
		return
	}
	rsp, err := h.stock.CreateCommodity(r.Context(), &pb.Commodity{
		Name: b.Name, Count: b.Count, Sale: b.Sale, StartTime: b.StartTime, EndTime: b.EndTime})
	if err == nil && rsp.GetCommodity() != nil {
		h.cache.forget(rsp.Commodity.Id)
	}
	h.reply(w, rsp, err)
}

// get answers from the cache (see CacheTTL): the sale count it shows may be up to
// CacheTTL old.
func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, e := httpapi.PositiveID("id", r.URL.Query().Get("id"))
	if e != nil {
		httpapi.Fail(w, e)
		return
	}
	c, err := h.cache.get(r.Context(), id, func(ctx context.Context) (reply cached, keep bool) {
		rec := newRecorder()
		// The fetch runs outside this request's goroutine, beyond httpapi.Recover's reach.
		defer func() {
			if v := recover(); v != nil {
				slog.Error("get commodity panic", "id", id, "panic", v)
				rec = newRecorder()
				httpapi.Fail(rec, httpapi.Errorf(http.StatusInternalServerError, "internal error"))
				reply, keep = rec.reply(), false
			}
		}()
		rsp, err := h.stock.GetCommodity(ctx, &pb.Request{Id: id})
		h.reply(rec, rsp, err)
		// Keep final answers only: the commodity, or that there is none.
		return rec.reply(), err == nil && (rsp.Error == nil || rsp.Error.Code == http.StatusNotFound)
	})
	if err != nil {
		// This reader's own request ended while it waited; nobody reads the reply.
		return
	}
	writeCached(w, c)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var offset, limit int64
	for _, p := range []struct {
		name string
		v    *int64
	}{{"offset", &offset}, {"limit", &limit}} {
		s := q.Get(p.name)
		if s == "" {
			continue
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			httpapi.Fail(w, httpapi.Errorf(http.StatusBadRequest, "%s must be a non-negative integer", p.name))
			return
		}
		*p.v = n
	}
	rsp, err := h.stock.ListCommodities(r.Context(), &pb.ListRequest{Offset: offset, Limit: limit})
	if err != nil {
		httpapi.Fail(w, httpapi.FromRPC(err))
		return
	}
	if rsp.Error != nil {
		httpapi.Fail(w, &httpapi.Error{Code: int(rsp.Error.Code), Detail: rsp.Error.Detail})
		return
	}
	out := make([]*Commodity, 0, len(rsp.Commodities))
	for _, c := range rsp.Commodities {
		out = append(out, FromProto(c))
	}
	httpapi.OK(w, "commodities", out)
}

func (h *Handler) reply(w http.ResponseWriter, rsp *pb.Response, err error) {
	switch {
	case err != nil:
		httpapi.Fail(w, httpapi.FromRPC(err))
	case rsp.Error != nil:
		httpapi.Fail(w, &httpapi.Error{Code: int(rsp.Error.Code), Detail: rsp.Error.Detail})
	default:
		httpapi.OK(w, "commodity", FromProto(rsp.Commodity))
	}
}
