// Package handler is stock-web's HTTP edge: JSON in, StockService RPC, JSON out.
package handler

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"secbuy/basic/httpapi"
	"secbuy/proto/outcome"
	pb "secbuy/stock-srv/proto/stock"
)

// Name is stock-web's registry name.
const Name = "go.micro.secbuy.web.stock"

// Commodity is the JSON form of a commodity (times in unix seconds, 0 = open); left is how
// many units can be bought now (a unit given back is on sale again a second later).
type Commodity struct {
	ID         int64  `json:"id"`
	Name       string `json:"name"`
	Count      int64  `json:"count"`
	Sale       int64  `json:"sale"`
	CreateTime int64  `json:"createTime"`
	StartTime  int64  `json:"startTime"`
	EndTime    int64  `json:"endTime"`
	Left       int64  `json:"left"`
	// TicketRequired: order-web sells it only with a ticket (GET /order/ticket).
	TicketRequired bool `json:"ticketRequired"`
}

// FromProto converts the RPC form (never nil).
func FromProto(c *pb.Commodity) *Commodity {
	return &Commodity{ID: c.Id, Name: c.Name, Count: c.Count, Sale: c.Sale,
		CreateTime: c.CreateTime, StartTime: c.StartTime, EndTime: c.EndTime, Left: c.Left,
		TicketRequired: c.TicketRequired}
}

// Handler serves /stock/* and the shop's page, /admin.
type Handler struct {
	stock    pb.StockService
	adminKey string
	maxBody  int64
	cache    *getCache

	// session is the admin's session cookie value (see sessionValue).
	session    string
	lockout    *httpapi.Lockout
	admin      Admin
	now        func() time.Time
	statsCache *getCache
}

// New returns the handler. adminKey guards /stock/create and the shop's page; maxBody caps
// request bodies. The page's figures from other services are null (see NewAdmin).
func New(stock pb.StockService, adminKey string, maxBody int64) *Handler {
	return NewAdmin(stock, adminKey, maxBody, Admin{})
}

// NewAdmin returns the handler, with what the shop's page reads besides the stock service.
func NewAdmin(stock pb.StockService, adminKey string, maxBody int64, admin Admin) *Handler {
	h := &Handler{stock: stock, adminKey: adminKey, maxBody: maxBody, cache: newGetCache(CacheTTL),
		session: sessionValue(adminKey), admin: admin, now: time.Now, statsCache: newGetCache(StatsTTL),
		lockout: httpapi.NewLockout(AdminFailures, AdminFailWindow, adminClients, admin.ClientIPHeader)}
	h.statsCache.now = func() time.Time { return h.now() }
	return h
}

// Routes returns the service's whole HTTP surface.
func (h *Handler) Routes() http.Handler {
	return httpapi.Mux(append([]httpapi.Endpoint{
		httpapi.Post("/stock/create", h.create),
		httpapi.Get("/stock/get", h.get),
		httpapi.Get("/stock/list", h.list),
	}, h.adminEndpoints()...)...)
}

type createBody struct {
	Name      string `json:"name"`
	Count     int64  `json:"count"`
	Sale      int64  `json:"sale"`
	StartTime int64  `json:"startTime"`
	EndTime   int64  `json:"endTime"`
	// Buckets splits the count over that many rows (optional; see StockService).
	Buckets int32 `json:"buckets"`
	// TicketRequired sells it only to buyers with a ticket (GET /order/ticket; optional).
	TicketRequired bool `json:"ticketRequired"`
}

// create is admin only: the X-Admin-Key header must carry the configured key, or a JSON
// request the admin's session cookie (see admit).
func (h *Handler) create(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w, r) {
		return
	}
	var b createBody
	if e := httpapi.Decode(w, r, h.maxBody, &b); e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	rsp, err := h.stock.CreateCommodity(r.Context(), &pb.Commodity{
		Name: b.Name, Count: b.Count, Sale: b.Sale, StartTime: b.StartTime, EndTime: b.EndTime, Buckets: b.Buckets,
		TicketRequired: b.TicketRequired})
	if err == nil && rsp.GetCommodity() != nil {
		h.cache.forget(rsp.Commodity.Id<<1, rsp.Commodity.Id<<1|1)
		h.statsCache.forget(0, 1) // the shop's page shows the new commodity at its next poll
	}
	httpapi.Reply(w, r, err, rsp.GetError(), "commodity", rsp.GetCommodity(), FromProto)
}

// get answers from the cache (see CacheTTL): the sale count it shows may be up to
// CacheTTL old.
func (h *Handler) get(w http.ResponseWriter, r *http.Request) {
	id, e := httpapi.PositiveID("id", r.URL.Query().Get("id"))
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	// Replies are cached per language (a refusal carries its words in Chinese too when the
	// reader prefers it); every reader of one key shares the first one's Accept-Language.
	key := id << 1
	if httpapi.PrefersChinese(r) {
		key |= 1
	}
	c, err := h.cache.get(r.Context(), key, func(ctx context.Context) (reply cached, keep bool) {
		rec := newRecorder()
		// The fetch runs outside this request's goroutine, beyond the reach of httpapi.Mux's recovery.
		defer func() {
			if v := recover(); v != nil {
				slog.Error("get commodity panic", "id", id, "panic", v)
				rec = newRecorder()
				httpapi.Fail(rec, r, outcome.Refuse(outcome.Reason_INTERNAL))
				reply, keep = rec.reply(), false
			}
		}()
		rsp, err := h.stock.GetCommodity(ctx, &pb.Request{Id: id})
		httpapi.Reply(rec, r, err, rsp.GetError(), "commodity", rsp.GetCommodity(), FromProto)
		// Keep final answers only: the commodity, or that there is none.
		reason := rsp.GetError().GetReason()
		return rec.reply(), err == nil && (rsp.GetError() == nil || reason == outcome.Reason_COMMODITY_NOT_FOUND)
	})
	if err != nil {
		// This reader's own request ended while it waited; nobody reads the reply.
		return
	}
	writeCached(w, c)
}

func (h *Handler) list(w http.ResponseWriter, r *http.Request) {
	offset, limit, e := httpapi.Paging(r.URL.Query(), 0) // stock-srv bounds the limit
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	rsp, err := h.stock.ListCommodities(r.Context(), &pb.ListRequest{Offset: offset, Limit: limit})
	list := rsp
	if rsp.GetError() != nil {
		list = nil // a refusal shows no list
	}
	httpapi.Reply(w, r, err, rsp.GetError(), "commodities", list, func(l *pb.ListResponse) []*Commodity {
		out := make([]*Commodity, 0, len(l.Commodities))
		for _, c := range l.Commodities {
			out = append(out, FromProto(c))
		}
		return out
	})
}
