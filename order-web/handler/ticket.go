package handler

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"

	"secbuy/basic/httpapi"
	"secbuy/basic/ticket"
	"secbuy/proto/outcome"
	stockpb "secbuy/stock-srv/proto/stock"
)

// knownCommodities is how many commodities' sale terms an instance keeps.
const knownCommodities = 10000

// terms is what the edge needs of a commodity to issue and check tickets. A commodity's
// window and ticketRequired never change once it is created, so they are kept until
// evicted.
type terms struct {
	start, end int64 // unix seconds; 0: open
	ticket     bool
}

// saleTerms reads each commodity's terms from stock-srv once per instance.
type saleTerms struct {
	stock   stockpb.StockService
	timeout time.Duration
	cache   *lru.Cache[int64, terms]
	reading singleflight.Group
}

// errNoCommodity is a commodity stock-srv does not have.
var errNoCommodity = errors.New("commodity not found")

func newSaleTerms(stock stockpb.StockService, timeout time.Duration) *saleTerms {
	cache, _ := lru.New[int64, terms](knownCommodities) // fails only for a size <= 0
	return &saleTerms{stock: stock, timeout: timeout, cache: cache}
}

// known returns commodity id's terms if this instance holds them.
func (s *saleTerms) known(id int64) (terms, bool) { return s.cache.Get(id) }

// of returns commodity id's terms: from memory, or else one read of stock-srv however many
// presses ask at once. errNoCommodity if there is no such commodity; another error if
// stock-srv could not say.
func (s *saleTerms) of(ctx context.Context, id int64) (terms, error) {
	if t, ok := s.cache.Get(id); ok {
		return t, nil
	}
	v, err, _ := s.reading.Do(strconv.FormatInt(id, 10), func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.timeout)
		defer cancel()
		rsp, err := s.stock.GetCommodity(ctx, &stockpb.Request{Id: id})
		switch {
		case err != nil:
			return terms{}, err
		case rsp.GetError().GetReason() == outcome.Reason_COMMODITY_NOT_FOUND:
			return terms{}, errNoCommodity
		case rsp.GetCommodity() == nil:
			return terms{}, errors.New("stock-srv: no commodity in its answer")
		}
		c := rsp.Commodity
		t := terms{start: c.StartTime, end: c.EndTime, ticket: c.TicketRequired}
		s.cache.Add(id, t)
		return t, nil
	})
	return v.(terms), err
}

// Tickets makes h issue tickets (GET /order/ticket) with issuer, and refuse a press for a
// commodity that requires one (stock's ticketRequired) without a valid ticket. Without
// it, h neither issues nor asks for tickets.
func (h *Handler) Tickets(stock stockpb.StockService, issuer *ticket.Issuer, rpcTimeout time.Duration) {
	h.tickets, h.terms = issuer, newSaleTerms(stock, rpcTimeout)
}

// ticketReply is the JSON of an issued ticket: its value, when it stops admitting (unix
// ms, and in ms from now), and the zero bits its proof of work needs (0: none).
type ticketReply struct {
	Value     string `json:"value"`
	Expires   int64  `json:"expires"`
	ExpiresIn int64  `json:"expiresIn"`
	Pow       int    `json:"pow"`
}

// ticket issues the token's buyer a ticket for commodity ?id=N, once its sale window is
// open and while it is not known sold out, within the rate limits.
func (h *Handler) ticket(w http.ResponseWriter, r *http.Request) {
	user, e := httpapi.User(h.users, r)
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	id, e := httpapi.PositiveID("id", r.URL.Query().Get("id"))
	if e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	if h.tickets == nil {
		httpapi.Fail(w, r, outcome.Refuse(outcome.Reason_ROUTE_NOT_FOUND))
		return
	}
	// A commodity this instance knows is refused from memory (most of a crowd: sold out);
	// the rate limit comes before anything that may call stock-srv.
	t, known := h.terms.known(id)
	if known {
		e = h.closed(t, id, user)
	}
	if e == nil && !h.guard.Limit(w, r, user) {
		h.turnedAway(id)
		return
	}
	if e == nil && !known {
		var err error
		if t, err = h.terms.of(r.Context(), id); err != nil {
			httpapi.Fail(w, r, termsRefusal(err))
			return
		}
		e = h.closed(t, id, user)
	}
	if e != nil {
		h.turnedAway(id)
		httpapi.Fail(w, r, e)
		return
	}
	tk := h.tickets.Issue(user, id)
	httpapi.OK(w, "ticket", ticketReply{Value: tk.Value, Expires: tk.Expires.UnixMilli(),
		ExpiresIn: time.Until(tk.Expires).Milliseconds(), Pow: tk.Bits})
}

// closed is why commodity id of terms t issues user no ticket now: not started, ended, or
// known sold out (user holds none of its units); nil if it does.
func (h *Handler) closed(t terms, id int64, user string) *outcome.Error {
	now := time.Now().Unix()
	switch {
	case t.start != 0 && now < t.start:
		return outcome.Refuse(outcome.Reason_NOT_STARTED)
	case t.end != 0 && now >= t.end:
		return outcome.Refuse(outcome.Reason_ENDED)
	case h.soldOut.refuse(id, user):
		return outcome.Refuse(outcome.Reason_SOLD_OUT)
	}
	return nil
}

// admitTicket checks user's press b for commodity id against the commodity's terms: from
// memory, or with read, from stock-srv if need be. It says whether it could check (the
// terms were known, or read), and the refusal if the press may not go on: 403 ticket
// required, saying why, or (stock-srv could not say) busy. The press goes on if the
// commodity needs no ticket, or b's ticket (with its nonce) is a valid one, or there is no
// such commodity (order-srv answers it).
func (h *Handler) admitTicket(ctx context.Context, user string, id int64, b sellBody, read bool) (bool, *outcome.Error) {
	if h.tickets == nil {
		return true, nil
	}
	t, ok := h.terms.known(id)
	if !ok && !read {
		return false, nil
	}
	var err error
	if !ok {
		t, err = h.terms.of(ctx, id)
	}
	if errors.Is(err, errNoCommodity) || err == nil && !t.ticket {
		return true, nil
	}
	if err != nil {
		return true, termsRefusal(err)
	}
	if err := h.tickets.Check(b.Ticket, b.Nonce, user, id); err != nil {
		e := outcome.Refuse(outcome.Reason_TICKET_REQUIRED)
		e.Detail = "ticket required: " + err.Error() + "; get one from GET /order/ticket?id=" + strconv.FormatInt(id, 10)
		return true, e
	}
	return true, nil
}

// refuseTicket answers a press that admitTicket refused.
func (h *Handler) refuseTicket(w http.ResponseWriter, r *http.Request, id int64, e *outcome.Error) {
	if e.Reason == outcome.Reason_TICKET_REQUIRED {
		h.turnedAway(id)
	}
	httpapi.Fail(w, r, e)
}

// termsRefusal is what a buyer is told when a commodity's terms could not be read: nil
// (they were), 404 (no such commodity) or busy.
func termsRefusal(err error) *outcome.Error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, errNoCommodity):
		return outcome.Refuse(outcome.Reason_COMMODITY_NOT_FOUND)
	}
	return httpapi.FromRPC(err)
}
