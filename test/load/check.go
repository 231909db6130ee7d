package load

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"secbuy/basic/connect"
	"secbuy/basic/svc"
	orderpb "secbuy/order-srv/proto/order"
	paymentpb "secbuy/payment-srv/proto/payment"
	stockpb "secbuy/stock-srv/proto/stock"
)

// Audit is what the three services say about one commodity. Payments and PaymentIDSum
// count live payments (unpaid or paid, not expired).
type Audit struct {
	Count, Sale, Granted, Released                       int64 // stock-srv
	Live, Pending, Failed, TwoLive, LiveIDSum, Cancelled int64 // order-srv
	Payments, Paid, Expired, PaymentIDSum                int64 // payment-srv
}

// Auditor reads the services' Audit RPCs through go-micro's NATS registry.
type Auditor struct {
	err     error // the registry's, returned by every Audit
	stock   stockpb.StockService
	order   orderpb.OrderService
	payment paymentpb.PaymentService
}

// NewAuditor returns an Auditor using go-micro's NATS registry at natsURL (credentials,
// if any, in the URL).
func NewAuditor(natsURL string) *Auditor { return NewAuditorOn(connect.NATS{URL: natsURL}) }

// NewAuditorOn returns an Auditor using go-micro's NATS registry as n says. If the
// registry cannot be built (n's files are wrong, or NATS refuses the credentials), every
// Audit returns that error.
func NewAuditorOn(n connect.NATS) *Auditor {
	reg, err := n.Registry()
	if err != nil {
		return &Auditor{err: err}
	}
	c := svc.Client(reg, 10*time.Second, 6*time.Second)
	return &Auditor{
		stock:   stockpb.NewStockService(svc.Internal(stockpb.Name), c),
		order:   orderpb.NewOrderService(svc.Internal(orderpb.Name), c),
		payment: paymentpb.NewPaymentService(svc.Internal(paymentpb.Name), c),
	}
}

// Audit reads all three services' view of commodity.
func (a *Auditor) Audit(ctx context.Context, commodity int64) (Audit, error) {
	var au Audit
	if a.err != nil {
		return au, a.err
	}
	s, err := a.stock.Audit(ctx, &stockpb.Request{Id: commodity})
	if err != nil {
		return au, fmt.Errorf("stock audit: %w", err)
	}
	if !s.Success {
		return au, fmt.Errorf("stock audit: %v", s.Error)
	}
	o, err := a.order.Audit(ctx, &orderpb.AuditRequest{Sid: commodity})
	if err != nil {
		return au, fmt.Errorf("order audit: %w", err)
	}
	p, err := a.payment.Audit(ctx, &paymentpb.AuditRequest{CommodityId: commodity})
	if err != nil {
		return au, fmt.Errorf("payment audit: %w", err)
	}
	return Audit{
		Count: s.Count, Sale: s.Sale, Granted: s.Granted, Released: s.Released,
		Live: o.Live, Pending: o.Pending, Failed: o.Failed, TwoLive: o.UsersWithTwoLive, LiveIDSum: o.LiveIdSum, Cancelled: o.Cancelled,
		Payments: p.Live, Paid: p.Paid, Expired: p.Expired, PaymentIDSum: p.LiveOrderIdSum,
	}, nil
}

// final says whether a reply settles the press: not an error, a 5xx, a 429 "slow down"
// or a 409 "already in progress" (the same user's other press is still in flight).
func final(r Reply) bool {
	return r.Err == nil && r.Status < 500 && r.Status != 429 && r.Reason != "already in progress"
}

// Violations lists every invariant of shared/DESIGN.md that au breaks. soldOutSeen says
// whether some buyer was refused for "sold out".
func (au Audit) Violations(soldOutSeen bool) []string {
	var v []string
	if au.Sale > au.Count {
		v = append(v, fmt.Sprintf("oversold: sale %d > count %d", au.Sale, au.Count))
	}
	if au.Sale != au.Granted {
		v = append(v, fmt.Sprintf("sale %d != live granted stock_sale rows %d", au.Sale, au.Granted))
	}
	if au.Sale != au.Live {
		v = append(v, fmt.Sprintf("sale %d != live orders %d", au.Sale, au.Live))
	}
	if au.Pending != 0 {
		v = append(v, fmt.Sprintf("%d orders still pending", au.Pending))
	}
	if au.TwoLive != 0 {
		v = append(v, fmt.Sprintf("%d users hold two live orders", au.TwoLive))
	}
	if au.Payments != au.Live || au.PaymentIDSum != au.LiveIDSum {
		v = append(v, fmt.Sprintf("payments %d (id sum %d) != live orders %d (id sum %d)", au.Payments, au.PaymentIDSum, au.Live, au.LiveIDSum))
	}
	if au.Expired != au.Cancelled || au.Cancelled != au.Released {
		v = append(v, fmt.Sprintf("expired payments %d, cancelled orders %d, released units %d: want all equal", au.Expired, au.Cancelled, au.Released))
	}
	// Units that came back after an expiry are on sale again, so they are not "unsold".
	if soldOutSeen && au.Sale+au.Released < au.Count {
		v = append(v, fmt.Sprintf("buyers were told sold out but only %d of %d units sold (%d returned)", au.Sale, au.Count, au.Released))
	}
	return v
}

// Check waits up to cfg.Settle for pending orders to finish and payments to appear, then
// checks the invariants, including that the orders that exist are exactly the ones buyers
// were told succeeded. It returns the final audit and the violations found. It goes as a
// buyer would, then as an auditor: resend every press without a final answer, follow
// every pending order to its end, wait for the services' audits to settle, compare.
func Check(ctx context.Context, c *http.Client, cfg Config, a *Auditor, res Result) (Audit, []string, error) {
	ch := checker{ctx: ctx, c: c, cfg: cfg, deadline: time.Now().Add(cfg.Settle)}
	if unsolved := ch.resend(res.Replies, res.Commodity); len(unsolved) > 0 {
		return Audit{}, unsolved, nil
	}
	told, soldOut := toldAndSoldOut(res.Replies)
	if err := ch.followPending(res.Replies, told, &soldOut); err != nil {
		return Audit{}, []string{err.Error()}, nil
	}
	au, err := ch.settledAudit(a, res.Commodity)
	if err != nil {
		return au, nil, err
	}
	v := au.Violations(soldOut)
	var sum int64
	for id := range told {
		sum += id
	}
	if int64(len(told)) != au.Live || sum != au.LiveIDSum {
		v = append(v, fmt.Sprintf("buyers were told of %d orders (id sum %d) but %d exist (id sum %d)", len(told), sum, au.Live, au.LiveIDSum))
	}
	return au, v, nil
}

// checker is one Check: its client and configuration, and the deadline of every wait.
type checker struct {
	ctx      context.Context
	c        *http.Client
	cfg      Config
	deadline time.Time
}

// resend resends, with the same Idempotency-Key, every press whose answer was not final
// (no answer, or "busy"), until it is, as a real client would; it records the final
// answers in replies and returns the presses still without one at the deadline.
func (ch checker) resend(replies []Reply, commodity int64) []string {
	var (
		mu       sync.Mutex
		unsolved []string
		wg       sync.WaitGroup
		slots    = make(chan struct{}, 32)
	)
	for i := range replies {
		r := replies[i]
		if final(r) {
			continue
		}
		slots <- struct{}{}
		wg.Go(func() {
			defer func() { <-slots }()
			tok := ch.token(r)
			for !final(r) {
				if time.Now().After(ch.deadline) {
					mu.Lock()
					unsolved = append(unsolved, fmt.Sprintf("user %d: no final answer within %v: %d %s %v", r.User, ch.cfg.Settle, r.Status, r.Reason, r.Err))
					mu.Unlock()
					return
				}
				time.Sleep(200 * time.Millisecond)
				r = Buy(ch.ctx, ch.c, ch.cfg, tok, r.User, commodity, r.Key)
			}
			replies[i].Reason, replies[i].OrderID = r.Reason, r.OrderID
		})
	}
	wg.Wait()
	return unsolved
}

// token is the bearer token to resend r with: its own, or one minted for its user.
func (ch checker) token(r Reply) string {
	if r.Token != "" {
		return r.Token
	}
	tok, _ := ch.cfg.Token(r.User, time.Hour)
	return tok
}

// toldAndSoldOut returns the order ids buyers were told are theirs, and whether some buyer
// was told "sold out".
func toldAndSoldOut(replies []Reply) (map[int64]bool, bool) {
	told := map[int64]bool{}
	soldOut := false
	for _, r := range replies {
		switch r.Reason {
		case "ok":
			told[r.OrderID] = true
		case "sold out":
			soldOut = true
		}
	}
	return told, soldOut
}

// followPending follows every order a buyer was told is pending to its end, as the buyer
// would (GET /order/get), and adds it to told if it was created.
func (ch checker) followPending(replies []Reply, told map[int64]bool, soldOut *bool) error {
	for _, r := range replies {
		if r.Reason != "pending" {
			continue
		}
		tok := ch.token(r)
		for {
			_, rep, err := call(ch.ctx, ch.c, "GET", fmt.Sprintf("%s/order/get?id=%d", ch.cfg.OrderURL, r.OrderID), tok, nil, nil)
			if err == nil && rep.Order != nil && rep.Order.State != "pending" {
				if rep.Order.State == "created" {
					told[r.OrderID] = true
				}
				*soldOut = *soldOut || rep.Order.Reason == "sold out"
				break
			}
			if time.Now().After(ch.deadline) {
				return fmt.Errorf("order %d still pending after %v", r.OrderID, ch.cfg.Settle)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// settledAudit reads the services' audit of commodity until nothing is in flight any more
// (no pending order, a payment for every order, every expiry carried through), or the
// deadline passes; it returns the last audit.
func (ch checker) settledAudit(a *Auditor, commodity int64) (Audit, error) {
	for {
		au, err := a.Audit(ch.ctx, commodity)
		if err == nil && au.Pending == 0 && au.Payments == au.Live && au.PaymentIDSum == au.LiveIDSum &&
			au.Expired == au.Cancelled && au.Cancelled == au.Released || time.Now().After(ch.deadline) {
			return au, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// String prints the audit as one line.
func (au Audit) String() string {
	return strings.Join([]string{
		fmt.Sprintf("count %d sale %d granted %d", au.Count, au.Sale, au.Granted),
		fmt.Sprintf("orders live %d pending %d failed %d users-with-two %d", au.Live, au.Pending, au.Failed, au.TwoLive),
		fmt.Sprintf("payments %d paid %d expired %d | cancelled %d released %d", au.Payments, au.Paid, au.Expired, au.Cancelled, au.Released),
	}, " | ")
}
