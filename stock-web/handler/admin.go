package handler

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go-micro.dev/v6/client"
	"golang.org/x/sync/errgroup"

	"secbuy/basic/httpapi"
	"secbuy/basic/turned"
	orderpb "secbuy/order-srv/proto/order"
	paymentpb "secbuy/payment-srv/proto/payment"
	"secbuy/proto/outcome"
	pb "secbuy/stock-srv/proto/stock"
)

// The shop's page: plain HTML, CSS and JS, no build step.
//
//go:embed admin
var adminPage embed.FS

// The shop's page settings.
const (
	// SessionCookie holds the admin's session: not the key, but a MAC made with it
	// (sessionValue), so the key itself never travels in a cookie or sits in the browser.
	SessionCookie = "secbuy_admin"
	// sessionLabel is what the session MAC is made of; changing it signs every admin out.
	sessionLabel = "secbuy admin session v1"
	// StatsTTL is how long one stats answer is served to every page that asks: a page
	// polls once a second, so however many are open, stock-web asks the services at most
	// once per StatsTTL.
	StatsTTL = time.Second
	// statsList is how many commodities the stats show, the newest first.
	statsList = 50
	// auditLimit bounds the Audit calls in flight for one stats answer.
	auditLimit = 8
	// statsTimeout bounds the making of one stats answer (the RPC client's own timeout
	// bounds each call).
	statsTimeout = 5 * time.Second
)

// OrderAuditor is the part of order-srv the shop's page reads.
type OrderAuditor interface {
	Audit(ctx context.Context, in *orderpb.AuditRequest, opts ...client.CallOption) (*orderpb.AuditResponse, error)
}

// PaymentAuditor is the part of payment-srv the shop's page reads.
type PaymentAuditor interface {
	Audit(ctx context.Context, in *paymentpb.AuditRequest, opts ...client.CallOption) (*paymentpb.AuditResponse, error)
}

// Admin is what the shop's page reads besides the stock service. Any part may be nil:
// its figures are then null.
type Admin struct {
	Orders   OrderAuditor
	Payments PaymentAuditor
	// Redis holds the presses order-web turned away (package turned), under keys
	// starting with TurnedPrefix (the rate_key_prefix order-web counts under).
	Redis        redis.UniversalClient
	TurnedPrefix string
	// ClientIPHeader is the trusted proxy's header the client IP of a failed admin key is
	// counted by (config's client_ip_header; empty: the connection's address).
	ClientIPHeader string
}

// The limit on wrong admin keys: after AdminFailures within AdminFailWindow from one client
// IP, that IP's attempts get 429 until the window ends (httpapi.Lockout; per instance,
// remembering the adminClients most recent IPs).
const (
	AdminFailures   = 5
	AdminFailWindow = time.Minute
	adminClients    = 10000
)

// adminEndpoints are the shop's page and what it reads and posts.
func (h *Handler) adminEndpoints() []httpapi.Endpoint {
	return []httpapi.Endpoint{
		httpapi.Get("/admin", adminFile("index.html", "text/html; charset=utf-8")),
		httpapi.Get("/admin/app.js", adminFile("app.js", "text/javascript; charset=utf-8")),
		httpapi.Get("/admin/app.css", adminFile("app.css", "text/css; charset=utf-8")),
		httpapi.Post("/admin/signin", h.signIn),
		httpapi.Post("/admin/signout", h.signOut),
		httpapi.Get("/admin/stats", h.stats),
	}
}

// adminCSP keeps the page to its own origin: scripts, styles and requests from 'self'
// only.
const adminCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// adminFile serves the page's file name, of type typ.
func adminFile(name, typ string) http.HandlerFunc {
	return httpapi.PageFile(adminPage, "admin/"+name, typ, func(*http.Request) string { return adminCSP })
}

// sessionValue is the session cookie's value for key: a MAC of a fixed label, keyed by
// the admin key. It says the holder once knew the key, and lapses when the key changes.
func sessionValue(key string) string {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(sessionLabel))
	return hex.EncodeToString(m.Sum(nil))
}

// admit says whether r comes from the admin, and if not writes the refusal: 401, or 429
// for a client IP locked out by its wrong keys (h.lockout). The admin's request carries
// the configured key in the X-Admin-Key header, or the right session cookie and is one a
// page of another site cannot make the browser send: a GET (it changes nothing, and
// without CORS that page cannot read the answer) or a request with Content-Type
// application/json (which an HTML form cannot send, and a cross-origin fetch must ask
// leave for). SameSite=Strict keeps the cookie off other sites' requests in the first
// place; this holds without it. No key configured: nobody is. The cookie, a MAC of 256
// bits, is not counted: it cannot be guessed.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request) bool {
	if key := r.Header.Get("X-Admin-Key"); key != "" {
		ok, wait := h.lockout.Try(r, func() bool { return h.keyOK(key) })
		if wait > 0 {
			httpapi.RefuseLocked(w, r, wait)
			return false
		}
		if ok {
			return true
		}
	}
	if c, err := r.Cookie(SessionCookie); err == nil && h.adminKey != "" && hmac.Equal([]byte(c.Value), []byte(h.session)) &&
		(r.Method == http.MethodGet || isJSON(r)) {
		return true
	}
	httpapi.Fail(w, r, outcome.Refuse(outcome.Reason_ADMIN_KEY_REQUIRED))
	return false
}

// keyOK says whether key is the admin key, in time that depends on neither (their
// SHA-256 digests are compared in constant time, so not even the length shows).
func (h *Handler) keyOK(key string) bool {
	got, want := sha256.Sum256([]byte(key)), sha256.Sum256([]byte(h.adminKey))
	return h.adminKey != "" && subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

func isJSON(r *http.Request) bool {
	t, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && t == "application/json"
}

// signIn takes {"key":"..."}: the right key gets the session cookie (for this browser
// session only), a wrong one 401.
func (h *Handler) signIn(w http.ResponseWriter, r *http.Request) {
	var b struct {
		Key string `json:"key"`
	}
	if e := httpapi.Decode(w, r, h.maxBody, &b); e != nil {
		httpapi.Fail(w, r, e)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	ok, wait := h.lockout.Try(r, func() bool { return h.keyOK(b.Key) })
	if wait > 0 {
		httpapi.RefuseLocked(w, r, wait)
		return
	}
	if !ok {
		httpapi.Fail(w, r, outcome.Refuse(outcome.Reason_ADMIN_KEY_REQUIRED))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: h.session, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	httpapi.OK(w, "signedIn", true)
}

// signOut clears the session cookie.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	httpapi.OK(w, "signedIn", false)
}

// StatsCommodity is one commodity as the shop watches it (times in unix seconds, 0 =
// open). Sold and Left are stock-srv's; Orders (created ones, live or since cancelled) and
// Pending (orders whose unit's answer is not recorded yet) come from order-srv, Paid,
// Unpaid and Expired from payment-srv, and TurnedPerSec is the presses order-web turned
// away in the last whole second. A figure that could not be read is null.
type StatsCommodity struct {
	ID           int64  `json:"id"`
	Name         string `json:"name"`
	Count        int64  `json:"count"`
	Sold         int64  `json:"sold"`
	Left         int64  `json:"left"`
	StartTime    int64  `json:"startTime"`
	EndTime      int64  `json:"endTime"`
	Orders       *int64 `json:"orders"`
	Pending      *int64 `json:"pending"`
	Paid         *int64 `json:"paid"`
	Unpaid       *int64 `json:"unpaid"`
	Expired      *int64 `json:"expired"`
	TurnedPerSec *int64 `json:"turnedPerSec"`
}

// statsAnswer is one stats answer: the figures and when they were read (unix ms), or the
// refusal in their place.
type statsAnswer struct {
	commodities []*StatsCommodity
	serverMs    int64
	refusal     *outcome.Error
}

// stats answers the page's poll: the newest commodities with their live figures. One
// answer (per language, as for GET /stock/get) serves every page for StatsTTL, and pages
// that ask while it is made wait for it (h.statsCache). A refusal is kept too: with the
// services down, pages cost them one call a second, not one each.
func (h *Handler) stats(w http.ResponseWriter, r *http.Request) {
	if !h.admit(w, r) {
		return
	}
	var key int64
	if httpapi.PrefersChinese(r) {
		key = 1
	}
	c, err := h.statsCache.get(r.Context(), key, func(ctx context.Context) (reply cached, keep bool) {
		rec := newRecorder()
		rec.Header().Set("Cache-Control", "no-store")
		// The answer is made outside this request's goroutine, beyond the reach of httpapi.Mux's recovery.
		defer func() {
			if v := recover(); v != nil {
				slog.Error("admin stats panic", "panic", v)
				rec = newRecorder()
				httpapi.Fail(rec, r, outcome.Refuse(outcome.Reason_INTERNAL))
				reply, keep = rec.reply(), false
			}
		}()
		ctx, cancel := context.WithTimeout(ctx, statsTimeout)
		defer cancel()
		a := h.makeStats(ctx)
		if a.refusal != nil {
			httpapi.Fail(rec, r, a.refusal)
		} else {
			httpapi.JSON(rec, http.StatusOK, map[string]any{"success": true, "serverMs": a.serverMs, "commodities": a.commodities})
		}
		return rec.reply(), true
	})
	if err != nil {
		return // this reader's own request ended while it waited
	}
	writeCached(w, c)
}

// makeStats reads the newest commodities, then their orders and payments (a few calls at
// a time) and their turned-away presses (one Redis read), all at once. A figure that
// fails is null; only the list failing fails the answer.
func (h *Handler) makeStats(ctx context.Context) *statsAnswer {
	rsp, err := h.stock.ListCommodities(ctx, &pb.ListRequest{Limit: statsList, Newest: true})
	if err != nil {
		slog.WarnContext(ctx, "admin stats: list commodities", "err", err)
		return &statsAnswer{refusal: httpapi.FromRPC(err)}
	}
	if rsp.GetError() != nil {
		return &statsAnswer{refusal: rsp.GetError()}
	}
	now := h.now()
	out := make([]*StatsCommodity, len(rsp.Commodities))
	sids := make([]int64, len(rsp.Commodities))
	for i, c := range rsp.Commodities {
		out[i] = &StatsCommodity{ID: c.Id, Name: c.Name, Count: c.Count, Sold: c.Sale, Left: c.Left,
			StartTime: c.StartTime, EndTime: c.EndTime}
		sids[i] = c.Id
	}
	var failed atomic.Int64
	var first atomic.Pointer[[]any]
	var g errgroup.Group
	g.SetLimit(auditLimit)
	// task runs read in the group; its failure (or panic: it runs beyond the reach of httpapi.Mux's
	// recovery) leaves its figures null, and the first one is logged, with how many there were.
	task := func(what string, id int64, read func() error) {
		g.Go(func() error {
			err := errors.New("panic")
			defer func() {
				if v := recover(); v != nil {
					err = fmt.Errorf("panic: %v", v)
				}
				if err != nil && failed.Add(1) == 1 {
					first.Store(&[]any{"what", what, "id", id, "err", err})
				}
			}()
			err = read()
			return nil
		})
	}
	refused := func(e *outcome.Error) error {
		if e == nil {
			return nil
		}
		return fmt.Errorf("refused: %s %s", e.GetReason(), e.GetDetail())
	}
	if h.admin.Redis != nil && len(sids) > 0 {
		task("turned away", 0, func() error {
			turnedAway, err := turned.PerSecond(ctx, h.admin.Redis, h.admin.TurnedPrefix, sids, now)
			if err != nil {
				return err
			}
			for _, c := range out {
				n := turnedAway[c.ID]
				c.TurnedPerSec = &n
			}
			return nil
		})
	}
	for _, c := range out {
		if h.admin.Orders != nil {
			task("order audit", c.ID, func() error {
				a, err := h.admin.Orders.Audit(ctx, &orderpb.AuditRequest{Sid: c.ID})
				if err == nil {
					err = refused(a.GetError())
				}
				if err != nil {
					return err
				}
				n, pending := a.GetLive()+a.GetCancelled(), a.GetPending()
				c.Orders, c.Pending = &n, &pending
				return nil
			})
		}
		if h.admin.Payments != nil {
			task("payment audit", c.ID, func() error {
				a, err := h.admin.Payments.Audit(ctx, &paymentpb.AuditRequest{CommodityId: c.ID})
				if err == nil {
					err = refused(a.GetError())
				}
				if err != nil {
					return err
				}
				paid, unpaid, expired := a.GetPaid(), a.GetUnpaid(), a.GetExpired()
				c.Paid, c.Unpaid, c.Expired = &paid, &unpaid, &expired
				return nil
			})
		}
	}
	_ = g.Wait() // every task answers nil: a failure is a null figure
	if n := failed.Load(); n > 0 {
		slog.WarnContext(ctx, "admin stats: figures missing (shown as null)", append([]any{"failed", n}, *first.Load()...)...)
	}
	return &statsAnswer{commodities: out, serverMs: now.UnixMilli()}
}
