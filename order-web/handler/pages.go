package handler

import (
	"context"
	"embed"
	"encoding/json"
	"hash/fnv"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go-micro.dev/v6/web"
	"golang.org/x/sync/singleflight"

	"secbuy/basic/auth"
	"secbuy/basic/buyer"
	"secbuy/basic/httpapi"
	"secbuy/proto/outcome"
	pb "secbuy/stock-srv/proto/stock"
)

// The buyer's page: plain HTML, CSS and JS, no build step.
//
//go:embed page
var page embed.FS

// Page settings.
const (
	// feedEvery is how often the instance's feed reads the commodities on sale while a
	// page is open; a change goes out at once, and the whole state at least every
	// feedResend, so a page that missed one is right again within a second.
	feedEvery  = 200 * time.Millisecond
	feedResend = time.Second
	// maxStreams caps the live streams of one instance (each holds a connection and a
	// goroutine, some 30 KB): past it a page is told "busy" and its EventSource tries again.
	maxStreams = 10000
	// pageList is how many commodities on sale or coming up the page shows.
	pageList = 100
	// listFresh is how long one read of the commodities serves every page that asks.
	listFresh = feedEvery
	// devTokenTTL is how long a development token lasts.
	devTokenTTL = 12 * time.Hour
)

// PageConfig is what the buyer's page needs besides the stock service.
type PageConfig struct {
	// AuthSecret signs the development tokens, minted only when DevLogin is on.
	AuthSecret string
	DevLogin   bool
	// PaymentURL is payment-web as the browser reaches it ("": the page's host, port 8089).
	PaymentURL string
	MaxBody    int64
	RPCTimeout time.Duration
}

// Pages serves the buyer's page and what it reads: the commodities, the live stock
// stream, and (in development) a token for a user name. One feed per instance reads the
// stock and fans it out to every open page.
type Pages struct {
	stock pb.StockService
	cfg   PageConfig
	feed  *web.SSEBroadcaster
	html  http.HandlerFunc
	// stop ends when the instance stops (stopped cancels it): the streams end, and new
	// ones are refused.
	stop    context.Context
	stopped context.CancelFunc
	streams atomic.Int64
	// wake starts the feed when the first page opens.
	wake chan struct{}

	// The last list of the commodities on sale or coming up, shared by every page's first
	// read and the feed for listFresh.
	mu      sync.Mutex
	listed  []PageCommodity
	listAt  time.Time
	listing singleflight.Group
}

// NewPages returns the pages; Run feeds their stream until the instance stops.
func NewPages(stock pb.StockService, cfg PageConfig) *Pages {
	p := &Pages{stock: stock, cfg: cfg, feed: web.NewSSEBroadcaster(), wake: make(chan struct{}, 1)}
	p.html = p.file("index.html", "text/html; charset=utf-8")
	p.stop, p.stopped = context.WithCancel(context.Background())
	_ = p.feed.Start() // never stopped: a stream ends by its request's context (see stream)
	return p
}

// Endpoints are the page's routes, to add to the service's mux.
func (p *Pages) Endpoints() []httpapi.Endpoint {
	es := []httpapi.Endpoint{
		httpapi.Get("/{$}", p.html),
		httpapi.Get("/c/{id}", p.one),
		httpapi.Get("/page/app.js", p.file("app.js", "text/javascript; charset=utf-8")),
		httpapi.Get("/page/app.css", p.file("app.css", "text/css; charset=utf-8")),
		httpapi.Get("/page/commodities", p.commodities),
		httpapi.Get("/page/stream", p.stream),
	}
	if p.cfg.DevLogin {
		es = append(es, httpapi.Post("/page/devtoken", p.devToken))
	}
	return es
}

// csp is the page's policy: its scripts and styles come from this origin only, and it
// talks to this origin and to payment-web, nothing else.
func (p *Pages) csp(r *http.Request) string {
	pay := p.cfg.PaymentURL
	if pay == "" { // the page's own host, port 8089 (see app.js)
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		if strings.Contains(host, ":") {
			host = "[" + host + "]"
		}
		pay = "http://" + host + ":8089 https://" + host + ":8089"
	}
	return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self' " + pay + "; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
}

// file serves the page's file name, of type typ.
func (p *Pages) file(name, typ string) http.HandlerFunc {
	return httpapi.PageFile(page, "page/"+name, typ, p.csp)
}

// one serves the page for one commodity; the script reads which from the path.
func (p *Pages) one(w http.ResponseWriter, r *http.Request) {
	if _, e := httpapi.PositiveID("id", r.PathValue("id")); e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	p.html(w, r)
}

// PageCommodity is a commodity as the page shows it (times in unix seconds, 0 = open).
type PageCommodity struct {
	ID        int64  `json:"id"`
	Name      string `json:"name"`
	Count     int64  `json:"count"`
	Left      int64  `json:"left"`
	StartTime int64  `json:"startTime"`
	EndTime   int64  `json:"endTime"`
	// TicketRequired: the page gets a ticket (GET /order/ticket) before it buys.
	TicketRequired bool `json:"ticketRequired"`
}

func pageCommodity(c *pb.Commodity) PageCommodity {
	return PageCommodity{ID: c.Id, Name: c.Name, Count: c.Count, Left: c.Left, StartTime: c.StartTime, EndTime: c.EndTime,
		TicketRequired: c.TicketRequired}
}

// commodities answers the page's first read: the commodities on sale or coming up (or,
// with ?id=N, that one, ended or not), the server's clock in unix milliseconds (the page
// counts down by it, never by the browser's), and the page's settings.
func (p *Pages) commodities(w http.ResponseWriter, r *http.Request) {
	arrived := time.Now()
	var list []PageCommodity
	if s := r.URL.Query().Get("id"); s != "" {
		id, e := httpapi.PositiveID("id", s)
		if e != nil {
			httpapi.Fail(w, r, e)
			return
		}
		rsp, err := p.stock.GetCommodity(r.Context(), &pb.Request{Id: id})
		if err != nil || rsp.GetError() != nil || rsp.GetCommodity() == nil {
			httpapi.Reply(w, r, err, rsp.GetError(), "commodity", rsp.GetCommodity(), pageCommodity)
			return
		}
		list = []PageCommodity{pageCommodity(rsp.GetCommodity())}
	} else {
		cs, e := p.list(r.Context())
		if e != nil {
			httpapi.Fail(w, r, e)
			return
		}
		list = cs
	}
	// The page sets its clock by serverMs, the request's arrival, and tookMs, the time
	// spent here: its round trip less tookMs, halved, is how late serverMs reached it.
	httpapi.JSON(w, http.StatusOK, map[string]any{
		"success": true, "commodities": list,
		"serverMs": arrived.UnixMilli(), "tookMs": time.Since(arrived).Milliseconds(),
		"devLogin": p.cfg.DevLogin, "paymentUrl": p.cfg.PaymentURL,
		"lang": lang(r), "words": words,
	})
}

// words are the refusals' words, for the page to show in its language.
var words = httpapi.Words()

func lang(r *http.Request) string {
	if httpapi.PrefersChinese(r) {
		return "zh"
	}
	return "en"
}

// list returns the commodities on sale or coming up, newest first, as read at most
// listFresh ago (one read at a time), or says why not.
func (p *Pages) list(ctx context.Context) ([]PageCommodity, *outcome.Error) {
	p.mu.Lock()
	cs, at := p.listed, p.listAt
	p.mu.Unlock()
	if time.Since(at) < listFresh {
		return cs, nil
	}
	type answer struct {
		cs []PageCommodity
		e  *outcome.Error
	}
	v, _, _ := p.listing.Do("", func() (any, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.RPCTimeout)
		defer cancel()
		cs, e := p.current(ctx)
		if e == nil {
			p.mu.Lock()
			p.listed, p.listAt = cs, time.Now()
			p.mu.Unlock()
		}
		return answer{cs, e}, nil
	})
	a := v.(answer)
	return a.cs, a.e
}

// current reads the commodities on sale or coming up, newest first, or says why not.
func (p *Pages) current(ctx context.Context) ([]PageCommodity, *outcome.Error) {
	rsp, err := p.stock.ListCommodities(ctx, &pb.ListRequest{Limit: pageList, Current: true, Newest: true})
	if err != nil {
		return nil, httpapi.FromRPC(err)
	}
	if rsp.GetError() != nil {
		return nil, rsp.GetError()
	}
	out := make([]PageCommodity, 0, len(rsp.Commodities))
	for _, c := range rsp.Commodities {
		out = append(out, pageCommodity(c))
	}
	return out, nil
}

// stream is the page's live stock: Server-Sent Events of type "stock", each
// {"serverMs":..,"left":{"ID":N,...}} for every commodity on sale or coming up, whenever a
// figure changes and at least every second. Every open page of this instance shares one
// feed (Run).
func (p *Pages) stream(w http.ResponseWriter, r *http.Request) {
	if n := p.streams.Add(1); n > maxStreams || p.stop.Err() != nil {
		p.streams.Add(-1)
		w.Header().Set("Retry-After", "1")
		httpapi.Fail(w, r, outcome.Refuse(outcome.Reason_BUSY))
		return
	}
	defer p.streams.Add(-1)
	// A stream outlives the server's write timeout, which is for one answer.
	if err := http.NewResponseController(w).SetWriteDeadline(time.Time{}); err != nil {
		httpapi.Fail(w, r, outcome.Refuse(outcome.Reason_INTERNAL))
		return
	}
	select {
	case p.wake <- struct{}{}:
	default:
	}
	// The stream ends when the page goes or the instance stops.
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	defer context.AfterFunc(p.stop, cancel)()
	p.feed.Handler()(sameOrigin{w}, r.WithContext(ctx))
}

// sameOrigin drops the Access-Control-Allow-Origin: * that go-micro's SSE handler sets:
// the stream is for this origin's pages, not for any site's.
type sameOrigin struct{ http.ResponseWriter }

func (s sameOrigin) WriteHeader(status int) {
	s.Header().Del("Access-Control-Allow-Origin")
	s.ResponseWriter.WriteHeader(status)
}

func (s sameOrigin) Write(b []byte) (int, error) {
	s.Header().Del("Access-Control-Allow-Origin")
	return s.ResponseWriter.Write(b)
}

func (s sameOrigin) Flush() { http.NewResponseController(s.ResponseWriter).Flush() }

// Run feeds the stream while pages are open, until ctx ends; then it ends every stream,
// so the instance drains without waiting for its pages (they reconnect, to another one).
func (p *Pages) Run(ctx context.Context) {
	defer p.stopped()
	tick := time.NewTicker(feedEvery)
	defer tick.Stop()
	var last []byte
	var sent time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-tick.C:
		}
		if p.feed.ClientCount() == 0 {
			last = nil
			continue
		}
		c, cancel := context.WithTimeout(ctx, p.cfg.RPCTimeout)
		cs, e := p.list(c)
		cancel()
		if e != nil {
			if ctx.Err() == nil {
				slog.Debug("page feed", "reason", e.GetReason().String())
			}
			continue
		}
		left := make(map[string]int64, len(cs))
		for _, c := range cs {
			left[strconv.FormatInt(c.ID, 10)] = c.Left
		}
		b, _ := json.Marshal(left) // a map of ints: cannot fail
		if string(b) == string(last) && time.Since(sent) < feedResend {
			continue
		}
		last, sent = b, time.Now()
		p.feed.Broadcast([]byte(`event: stock` + "\n" + `data: {"serverMs":` + strconv.FormatInt(sent.UnixMilli(), 10) + `,"left":` + string(b) + "}\n\n"))
	}
}

// devName is a development user name: 1 to 32 letters, digits, _ or -.
var devName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,32}$`)

// devToken mints a token for a user name, in development only: a name of digits is that
// user id, any other is mapped to one (the same name, the same user).
func (p *Pages) devToken(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Name string `json:"name"`
	}
	if e := httpapi.Decode(w, r, p.cfg.MaxBody, &b); e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	if !devName.MatchString(b.Name) {
		httpapi.Fail(w, r, httpapi.Invalid("name must be 1 to 32 characters from A-Z a-z 0-9 _ -"))
		return
	}
	user := devUser(b.Name)
	token, err := auth.Mint(p.cfg.AuthSecret, user, devTokenTTL)
	if err != nil {
		httpapi.Fail(w, r, outcome.Refuse(outcome.Reason_INTERNAL))
		return
	}
	httpapi.JSON(w, http.StatusOK, map[string]any{"success": true, "token": token, "userId": user, "buyer": buyer.FromID(user), "name": b.Name})
}

// devUser is the user id of a development name: its digits if it is a positive number
// that fits, else a hash of it below 2^53 (a page's JavaScript reads it exactly).
func devUser(name string) int64 {
	if id, err := strconv.ParseInt(name, 10, 64); err == nil && id > 0 && strconv.FormatInt(id, 10) == name {
		return id
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return int64(h.Sum64()&(1<<53-1)) | 1<<40 // never a small id a script uses
}
