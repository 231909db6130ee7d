package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	"secbuy/basic/auth"
	"secbuy/test/load"
)

// helloBaseline measures the hello server, a process of its own, with the closed loop and
// the capacity sweep of the other scenarios: the ceiling of an HTTP service with this
// client on this machine.
func (b *bench) helloBaseline(ctx context.Context, _ int64) row {
	addr, stop, err := startHello(ctx)
	if err != nil {
		return row{name: "hello", err: err}
	}
	defer stop()
	req, err := newRequest("GET", "http://"+addr+"/hello", nil)
	if err != nil {
		return row{name: "hello", err: err}
	}
	next := func(int64) request { return req }
	r := newRow("hello", b.closed(false).run(ctx, next))
	r.note = "a plain net/http server in its own process, a fixed JSON reply"
	if b.sweep {
		r.capacity = b.capacity(ctx, "hello", 8000, func(rate float64) measured { return b.open(rate, b.step).run(ctx, next) })
	}
	if b.scenarios["crowd"] {
		// What the crowd's connections cost a server that does nothing, for its p99.
		l := b.closed(false)
		l.conns, l.d = b.crowdConns, b.step
		st := summarise(l.run(ctx, next))
		r.note += fmt.Sprintf("; over the crowd's %d connections: %.0f/s, p99 %s ms", b.crowdConns, st.rate, ms(st.p99))
	}
	return r
}

// burst is the flash crowd: burst-buyers distinct buyers (tokens minted beforehand), each
// pressing "buy" once with a key, for burst-units units, over conns connections; then the
// full check. It is load.Burst's crowd (same users, same keys) sent by the bench's client.
func (b *bench) burst(ctx context.Context, base int64) row {
	cfg := b.cfg
	cfg.Buyers, cfg.Units, cfg.Conns, cfg.UserBase = b.burstBuyers, b.burstUnits, b.conns, base
	r := b.presses(ctx, "burst", cfg, b.conns, 0)
	if r.err == nil {
		b.hot = r.run.commodity
	}
	return r
}

// burstTicket is the burst for a commodity that requires a ticket: every press first gets
// one (GET /order/ticket, on the same connection) and buys with it, as the buyer's page
// does; its rate is presses (ticket and buy) per second.
func (b *bench) burstTicket(ctx context.Context, base int64) row {
	cfg := b.cfg
	cfg.Buyers, cfg.Units, cfg.Conns, cfg.UserBase, cfg.Ticket = b.burstBuyers, b.burstUnits, b.conns, base, true
	r := b.presses(ctx, "burst-ticket", cfg, b.conns, 0)
	r.note = "each press a ticket, then the buy with it; " + r.note
	return r
}

// crowd is the sale-day crowd: crowd-buyers distinct buyers over crowd-conns connections,
// every press with an Idempotency-Key, one buyer in ten pressing a second time (another
// key) right after the first; then the full check, which also requires every buyer to
// have had a final answer.
func (b *bench) crowd(ctx context.Context, base int64) row {
	cfg := b.cfg
	cfg.Buyers, cfg.Units, cfg.Conns, cfg.UserBase = b.crowdBuyers, b.crowdUnits, b.crowdConns, base
	r := b.presses(ctx, "crowd", cfg, b.crowdConns, 10)
	r.note = fmt.Sprintf("%d buyers, %d connections, one in ten pressing twice; ", cfg.Buyers, b.crowdConns) + r.note
	return r
}

// presses sends every buyer's press (and, when every is not 0, every every-th buyer's
// second press right after the first) for a new commodity of cfg.Units, over conns
// connections of a closed loop, and checks the outcome.
func (b *bench) presses(ctx context.Context, name string, cfg load.Config, conns, every int) row {
	id, err := load.CreateCommodity(ctx, b.client, cfg, "flash-sale", cfg.Units)
	if err != nil {
		return row{name: name, err: err}
	}
	toks, tmpl, err := b.buyers(id, cfg.UserBase+1, cfg.Buyers)
	if err != nil {
		return row{name: name, err: err}
	}
	if cfg.Ticket {
		get, err := newRequest("GET", fmt.Sprintf("%s/order/ticket?id=%d", b.cfg.OrderURL, id), nil)
		if err != nil {
			return row{name: name, err: err}
		}
		tmpl.ticket, tmpl.sid = &get, id
	}
	// The presses in order: buyer i's first, then, for one in every, its second.
	type press struct{ buyer, n int }
	jobs := make([]press, 0, cfg.Buyers+cfg.Buyers/max(every, 1))
	for i := range cfg.Buyers {
		jobs = append(jobs, press{i, 1})
		if every > 0 && i%every == 0 {
			jobs = append(jobs, press{i, 2})
		}
	}
	keys := make([]string, len(jobs))
	for seq, j := range jobs {
		keys[seq] = "press-" + strconv.Itoa(j.buyer) + "-" + strconv.Itoa(j.n)
	}
	key := func(seq int64) string { return keys[seq] }
	l := loop{label: name, conns: conns, newConn: b.newConn, orders: true, n: int64(len(jobs))}
	m := l.run(ctx, func(seq int64) request {
		r := tmpl
		j := jobs[seq]
		r.bearer, r.user, r.key = toks[j.buyer], cfg.UserBase+1+int64(j.buyer), keys[seq]
		return r
	})
	m.commodity = id
	r := newRow(name, m)
	res := load.Result{Commodity: id, Replies: replies(m.samples, key), Elapsed: m.elapsed}
	b.check(ctx, &r, cfg, res)
	r.note += fmt.Sprintf(", the last sale answered after %s of %s", lastSale(m.samples).Round(time.Millisecond), m.elapsed.Round(time.Millisecond))
	return r
}

// lastSale returns when the last successful buy among samples was answered, from the start.
func lastSale(samples []sample) time.Duration {
	var last time.Duration
	for _, s := range samples {
		if s.reason == reasonOK {
			last = max(last, s.at)
		}
	}
	return last
}

// original is the 2019 original's test: 500 buyers for 10 units, all released at once,
// each on its own new connection (load.Burst with Conns 0, net/http's client).
func (b *bench) original(ctx context.Context, base int64) row {
	const name = "original"
	cfg := b.cfg
	cfg.Buyers, cfg.Units, cfg.Conns, cfg.UserBase = 500, 10, 0, base
	c := load.Client(0)
	defer c.CloseIdleConnections()
	cpu0, t0 := cpuTime(), time.Now()
	res, err := load.Burst(ctx, c, cfg)
	cpu := (cpuTime() - cpu0).Seconds() / time.Since(t0).Seconds()
	if err != nil {
		return row{name: name, err: err}
	}
	r := newRow(name, fromResult(res, cpu))
	r.note = "all at once, each on a new connection (load.Burst, net/http); client CPU includes minting the tokens; "
	b.check(ctx, &r, cfg, res)
	return r
}

// check runs load.Check on res and records the outcome in r.
func (b *bench) check(ctx context.Context, r *row, cfg load.Config, res load.Result) {
	au, v, err := load.Check(ctx, b.client, cfg, b.auditor, res)
	if err != nil {
		r.err = fmt.Errorf("check: %w", err)
		return
	}
	r.checked, r.violations = true, v
	r.note += fmt.Sprintf("sold %d of %d", au.Sale, au.Count)
}

// soldOut creates one unit, sells it, and then lets distinct users (cycling through a
// pre-minted pool, each press with a key of its own unless -soldout-keys=false) press "buy"
// for the whole duration: every one must hear "sold out". Then the capacity sweep.
func (b *bench) soldOut(ctx context.Context, base int64) row {
	const name = "soldout"
	id, err := load.CreateCommodity(ctx, b.client, b.cfg, "bench-sold-out", 1)
	if err != nil {
		return row{name: name, err: err}
	}
	tok, err := auth.Mint(b.cfg.AuthSecret, base+1, 2*time.Hour)
	if err != nil {
		return row{name: name, err: err}
	}
	first := load.Buy(ctx, b.client, b.cfg, tok, base+1, id, "bench-first")
	if first.Reason != "ok" && first.Reason != "pending" {
		return row{name: name, err: errors.Join(fmt.Errorf("buying the only unit of commodity %d: %d %s", id, first.Status, first.Reason), first.Err)}
	}
	toks, tmpl, err := b.buyers(id, base+2, b.soldOutUsers)
	if err != nil {
		return row{name: name, err: err}
	}
	key := func(int64) string { return "" }
	if b.soldOutKeys {
		key = func(seq int64) string { return "so-" + strconv.FormatInt(seq, 36) }
	}
	next := func(seq int64) request {
		r := tmpl
		i := int(seq % int64(len(toks)))
		r.bearer, r.user, r.key = toks[i], base+2+int64(i), key(seq)
		return r
	}
	m := b.closed(true).run(ctx, next)
	r := newRow(name, m)
	r.note = "buys carry no Idempotency-Key"
	if b.soldOutKeys {
		r.note = "every buy carries an Idempotency-Key of its own"
	}
	wrong := wrongAnswers(m.samples, "sold out", http.StatusConflict)
	if b.sweep {
		// Each step's requests are numbered on from the closed loop's, so keys stay new.
		from := int64(len(m.samples))
		r.capacity = b.capacity(ctx, name, 4000, func(rate float64) measured {
			sm := b.open(rate, b.step).run(ctx, func(seq int64) request { return next(from + seq) })
			from += int64(len(sm.samples))
			wrong = append(wrong, wrongAnswers(sm.samples, "sold out", http.StatusConflict)...)
			return sm
		})
	}
	// For load.Check: the sale, every press that did not hear "sold out", and one that did
	// (which says sale must equal count). The rest add nothing to what it checks.
	res := load.Result{Commodity: id, Replies: []load.Reply{first}}
	soldOut, soldOutSeen := intern("sold out"), false
	for _, s := range m.samples {
		if s.reason == soldOut && soldOutSeen {
			continue
		}
		soldOutSeen = soldOutSeen || s.reason == soldOut
		res.Replies = append(res.Replies, replies([]sample{s}, key)[0])
	}
	_, v, err := load.Check(ctx, b.client, b.cfg, b.auditor, res)
	if err != nil {
		r.err = fmt.Errorf("check: %w", err)
		return r
	}
	r.checked, r.violations = true, append(wrong, v...)
	return r
}

// wrongAnswers lists the answers other than want (with status) that the load does not
// explain: busy, slow down and no answer are only reported, in the table; anything else
// breaks the contract.
func wrongAnswers(ss []sample, want string, status int32) []string {
	w := intern(want)
	wrong := map[string]int{}
	for _, s := range ss {
		switch {
		case s.reason == w && s.status == status:
		case s.failed || s.status >= 500 || s.status == http.StatusTooManyRequests:
		default:
			wrong[fmt.Sprintf("%d %s", s.status, reasonName(s.reason))]++
		}
	}
	var out []string
	for k, n := range wrong {
		out = append(out, fmt.Sprintf("%d buys answered %s (want %s)", n, k, want))
	}
	slices.Sort(out)
	return out
}

// readStorm is buyers refreshing the hot commodity's page: GET /stock/get?id=HOT.
func (b *bench) readStorm(ctx context.Context, _ int64) row {
	const name = "readstorm"
	id := b.hot
	if id == 0 {
		var err error
		if id, err = load.CreateCommodity(ctx, b.client, b.cfg, "bench-read-storm", b.burstUnits); err != nil {
			return row{name: name, err: err}
		}
	}
	req, err := newRequest("GET", fmt.Sprintf("%s/stock/get?id=%d", b.cfg.StockURL, id), nil)
	if err != nil {
		return row{name: name, err: err}
	}
	r := newRow(name, b.closed(false).run(ctx, func(int64) request { return req }))
	r.note = fmt.Sprintf("commodity %d", id)
	au, err := b.auditor.Audit(ctx, id)
	if err != nil {
		r.err = fmt.Errorf("audit: %w", err)
		return r
	}
	r.checked, r.violations = true, au.Violations(false)
	if r.stats.ok != r.stats.requests {
		r.note += fmt.Sprintf("; %d reads not answered 200", r.stats.requests-r.stats.ok)
	}
	return r
}

// sustained is buys that can all succeed, each by a new user: the rate at which the suite
// turns buyers into durable orders, counted when the payment record exists. First a closed
// loop, then the capacity sweep, each step on a commodity of its own; the durable orders/s
// reported is the capacity step's.
func (b *bench) sustained(ctx context.Context, base int64) row {
	return b.sustainedOnce(ctx, "sustained", base, 0, b.sweep)
}

// buckets is the sustained closed loop on commodities whose count is split over K = 1, 2,
// 4 and 8 rows (stock buckets): the hot row's part in the rate of buys.
func (b *bench) buckets(ctx context.Context, base int64) []row {
	var rows []row
	for i, k := range []int{1, 2, 4, 8} {
		r := b.sustainedOnce(ctx, fmt.Sprintf("buckets-%d", k), base+int64(i)*1_000_000, k, false)
		r.note = fmt.Sprintf("K=%d rows; ", k) + r.note
		rows = append(rows, r)
	}
	return rows
}

// sustainedOnce is the sustained scenario under name, on commodities of the given buckets
// (0: the default), with the capacity sweep if sweep.
func (b *bench) sustainedOnce(ctx context.Context, name string, base int64, buckets int, sweep bool) row {
	users := base
	cfg := b.cfg
	cfg.Buckets = buckets
	run := func(l loop, n int) (measured, float64, error) {
		id, err := load.CreateCommodity(ctx, b.client, cfg, "bench-sustained", b.sustainedUnits)
		if err != nil {
			return measured{}, 0, err
		}
		toks, tmpl, err := b.buyers(id, users+1, n)
		if err != nil {
			return measured{}, 0, err
		}
		first := users + 1
		users += int64(n)
		key := func(seq int64) string { return "su-" + strconv.FormatInt(seq, 36) }
		l.n = int64(n)
		m := l.run(ctx, func(seq int64) request {
			r := tmpl
			r.user, r.key, r.bearer = first+seq, key(seq), toks[seq]
			return r
		})
		m.commodity = id
		payments, err := b.durable(ctx, id)
		if err != nil {
			return m, 0, err
		}
		// The whole check: every buyer told the truth, every invariant.
		res := load.Result{Commodity: id, Replies: replies(m.samples, key), Elapsed: m.elapsed}
		_, v, err := load.Check(ctx, b.client, b.cfg, b.auditor, res)
		if err == nil && len(v) > 0 {
			err = fmt.Errorf("invariant broken: %v", v)
		}
		return m, float64(payments) / m.elapsed.Seconds(), err
	}
	m, durable, err := run(b.closed(true), b.sustainedUsers)
	r := newRow(name, m)
	r.durable, r.checked, r.err = durable, err == nil, err
	r.note = fmt.Sprintf("closed loop: %.0f durable orders/s (orders with their payment record at most %v after the buys stopped)", durable, b.payWait)
	if err != nil || !sweep {
		return r
	}
	var capDurable float64
	r.capacity = b.capacity(ctx, name, 1000, func(rate float64) measured {
		sm, d, err := run(b.open(rate, b.step), int(rate*b.step.Seconds())+1)
		if err != nil {
			r.err, r.checked = err, false
		}
		if st := summarise(sm); passes(st) && err == nil {
			capDurable = d
		}
		return sm
	})
	if r.err == nil {
		r.durable = capDurable
		r.note += fmt.Sprintf("; at the capacity, open loop: %.0f durable orders/s", capDurable)
	}
	return r
}

// durable waits up to pay-wait for the payments of commodity id's orders, and returns how
// many exist then.
func (b *bench) durable(ctx context.Context, id int64) (int64, error) {
	deadline := time.Now().Add(b.payWait)
	for {
		au, err := b.auditor.Audit(ctx, id)
		if err == nil && au.Pending == 0 && au.Payments == au.Live && au.PaymentIDSum == au.LiveIDSum ||
			time.Now().After(deadline) || ctx.Err() != nil {
			return au.Payments, err
		}
		ctxSleep(ctx, 50*time.Millisecond)
	}
}

// passes says whether a step held: p99 at most 100 ms, no 5xx, no request without an answer.
func passes(st stats) bool {
	return st.requests > 0 && st.p99 <= 100*time.Millisecond && st.errors == 0
}

// maxSteps bounds a capacity sweep.
const maxSteps = 14

// capacity finds the highest open-loop rate that holds (see passes): from start it halves
// the rate until a step holds, then steps it up by a quarter until one does not; it
// returns the highest rate that held (0 if none did).
func (b *bench) capacity(ctx context.Context, name string, start float64, step func(rate float64) measured) float64 {
	best, rate := 0.0, start
	for i := 0; i < maxSteps && ctx.Err() == nil; i++ {
		st := summarise(step(rate))
		ok := passes(st)
		fmt.Fprintf(os.Stderr, "bench: %s capacity: %.0f/s offered: %.0f/s answered, p99 %s ms, %d errors: %v\n",
			name, rate, st.rate, ms(st.p99), st.errors, map[bool]string{true: "held", false: "did not hold"}[ok])
		switch {
		case ok:
			best, rate = rate, rate*1.25
		case best == 0 && rate > 100:
			rate /= 2
		default:
			return best
		}
	}
	return best
}
