// Command bench is secbuy's sale-day benchmark, run by `make bench` against the suite that
// `scripts/suite.sh up` started. It drives the public HTTP API with a Go load client in a
// closed loop (N connections, each sending its next request as soon as the previous one was
// answered), runs the scenarios below, checks every invariant of shared/DESIGN.md after
// each, and prints one table, with each scenario's rate as a ratio to a plain net/http
// handler measured by the same client in the same run, and each service's peak RSS.
//
//	plain      an in-process net/http handler returning a fixed small JSON body (baseline)
//	burst      20,000 distinct buyers, 1,000 units, 64 connections
//	soldout    buys by distinct users at a commodity that is already sold out
//	readstorm  GET /stock/get on the hot commodity (buyers refreshing the page)
//	sustained  buys that all can succeed; durable orders/s counts orders that have their
//	           payment record when the run ends
//	original   the 2019 original's test: 500 buyers, 10 units, all at once
//
// It exits 1 only if an invariant breaks or a scenario cannot run; latency and rate are
// reported, never asserted.
//
//	make bench ARGS='-scenarios burst,soldout -duration 5s'
//	SECBUY_PROFILE_DIR=/tmp/prof make bench   # CPU and allocation profiles of every service
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"secbuy/basic/auth"
	"secbuy/basic/config"
	"secbuy/test/load"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// scenarioNames are the scenarios in the order they run.
var scenarioNames = []string{"plain", "burst", "soldout", "readstorm", "sustained", "original"}

// opts are the command's flags.
type opts struct {
	duration       time.Duration
	conns          int
	burstBuyers    int
	burstUnits     int64
	scenarios      map[string]bool
	settle         time.Duration
	payWait        time.Duration
	soldOutUsers   int
	soldOutKeys    bool
	sustainedUsers int
	sustainedUnits int64
	runDir         string
	netHTTP        bool
}

// bench is one run: the configuration, the shared client and what the scenarios found.
type bench struct {
	opts
	cfg     load.Config // URLs, secrets, registry; per scenario copies set the rest
	client  *http.Client
	auditor *load.Auditor
	base    int64 // user ids of this run start above base
	hot     int64 // the hot commodity (the burst's), for the read storm
	rows    []row
}

func run() error {
	o, err := parseFlags()
	if err != nil {
		return err
	}
	c, err := config.Load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := newBench(o, c)
	b.header()
	b.runScenarios(ctx)
	fmt.Printf("\nload average at the end: %s (other work on this machine lowers every rate)\n", loadAvg())
	printTable(os.Stdout, b.rows)
	printNotes(os.Stdout, b)
	printRSS(os.Stdout, o.runDir)
	return b.verdict()
}

// parseFlags reads the command line.
func parseFlags() (opts, error) {
	var o opts
	var names string
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each timed scenario (soldout, readstorm, sustained, plain)")
	flag.IntVar(&o.conns, "conns", 64, "connections of the closed loop")
	flag.IntVar(&o.burstBuyers, "burst-buyers", 20000, "distinct buyers in the burst")
	flag.Int64Var(&o.burstUnits, "burst-units", 1000, "units on sale in the burst")
	flag.StringVar(&names, "scenarios", strings.Join(scenarioNames, ","), "comma-separated scenarios to run")
	flag.DurationVar(&o.settle, "settle", 30*time.Second, "how long a check waits for pending orders and payments")
	flag.DurationVar(&o.payWait, "pay-wait", 5*time.Second, "how long after the sustained run payments may still appear to count as durable")
	flag.IntVar(&o.soldOutUsers, "soldout-users", 20000, "pre-minted users the sold-out buys cycle through")
	flag.BoolVar(&o.soldOutKeys, "soldout-keys", false, "sold-out buys carry an Idempotency-Key (order-web then asks order-srv)")
	flag.IntVar(&o.sustainedUsers, "sustained-users", 150000, "users pre-minted for the sustained run (more are minted on the fly)")
	flag.Int64Var(&o.sustainedUnits, "sustained-units", 2_000_000, "units of the sustained run's commodity (never sold out)")
	client := flag.String("client", "raw", "raw: the bench's lean HTTP/1.1 keep-alive client; net/http: load.Client, to compare")
	flag.StringVar(&o.runDir, "run-dir", "", "where scripts/suite.sh keeps its pid files (default: run/ at the module root)")
	flag.Parse()
	switch *client {
	case "raw":
	case "net/http":
		o.netHTTP = true
	default:
		return o, fmt.Errorf("-client must be raw or net/http, not %q", *client)
	}
	o.scenarios = map[string]bool{}
	for _, n := range strings.Split(names, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(scenarioNames, n) {
			return o, fmt.Errorf("unknown scenario %q (have %s)", n, strings.Join(scenarioNames, ", "))
		}
		o.scenarios[n] = true
	}
	if o.conns < 1 || o.duration <= 0 || o.burstBuyers < 1 || o.burstUnits < 1 {
		return o, errors.New("-conns, -duration, -burst-buyers and -burst-units must be positive")
	}
	if o.runDir == "" {
		o.runDir = filepath.Join(moduleRoot(), "run")
	}
	return o, nil
}

// newBench aims a run at the suite that c describes.
func newBench(o opts, c config.Config) *bench {
	b := &bench{
		opts: o,
		cfg: load.Config{
			StockURL:   webURL(c.StockWebAddr),
			OrderURL:   webURL(c.OrderWebAddr),
			PaymentURL: webURL(c.PaymentWebAddr),
			AdminKey:   c.AdminKey,
			AuthSecret: c.AuthSecret,
			NATSURL:    c.NATSURL,
			Settle:     o.settle,
		},
		client: load.Client(o.conns),
		// Distinct users per run (and per scenario, below), so runs never meet each other's
		// orders: one user may hold one live order per commodity.
		base: time.Now().Unix() % 100000 * 100_000_000,
	}
	if b.needsSuite() {
		b.auditor = load.NewAuditor(c.NATSURL)
	}
	return b
}

// header says what the run measures with.
func (b *bench) header() {
	kind := "raw HTTP/1.1 over kept-alive TCP connections"
	if b.netHTTP {
		kind = "net/http's client (load.Client)"
	}
	fmt.Printf("secbuy bench on %d CPUs (the load client shares them with the services); load average %s\n", runtime.NumCPU(), loadAvg())
	fmt.Printf("load client: Go, %s; closed loop: %d connections, each sending its next request as soon as the previous one is answered; %v per timed scenario\n",
		kind, b.conns, b.duration)
}

// runScenarios runs the chosen scenarios in order, each with users of its own.
func (b *bench) runScenarios(ctx context.Context) {
	steps := []struct {
		name string
		fn   func(context.Context, int64) row
	}{
		{"plain", b.plain}, {"burst", b.burst}, {"soldout", b.soldOut},
		{"readstorm", b.readStorm}, {"sustained", b.sustained}, {"original", b.original},
	}
	for i, s := range steps {
		if !b.scenarios[s.name] {
			continue
		}
		if ctx.Err() != nil {
			b.rows = append(b.rows, row{name: s.name, err: errors.New("interrupted")})
			continue
		}
		fmt.Fprintf(os.Stderr, "bench: %s ...\n", s.name)
		r := s.fn(ctx, b.base+int64(i)*10_000_000)
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "bench: %s: %v\n", s.name, r.err)
		}
		b.rows = append(b.rows, r)
	}
}

// verdict fails the run if a scenario could not run or broke an invariant.
func (b *bench) verdict() error {
	var failed []string
	for _, r := range b.rows {
		switch {
		case r.err != nil:
			failed = append(failed, r.name+" could not run or be checked")
		case len(r.violations) > 0:
			failed = append(failed, r.name+": invariant broken")
		}
	}
	if len(failed) > 0 {
		return fmt.Errorf("bench failed: %s", strings.Join(failed, "; "))
	}
	return nil
}

func (b *bench) needsSuite() bool {
	for _, n := range scenarioNames[1:] {
		if b.scenarios[n] {
			return true
		}
	}
	return false
}

// row is one line of the table.
type row struct {
	name       string
	run        measured
	stats      stats
	durable    float64 // durable orders/s (sustained only; 0 elsewhere)
	checked    bool    // whether invariants were checked
	violations []string
	note       string
	err        error
}

func newRow(name string, r measured) row {
	return row{name: name, run: r, stats: summarise(r)}
}

// plain measures a net/http handler that returns a fixed small JSON body, served from this
// process on loopback: the ceiling of the HTTP edge with this client on this machine.
func (b *bench) plain(ctx context.Context, _ int64) row {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return row{name: "plain", err: err}
	}
	body := []byte(`{"success":true,"commodity":{"id":1,"name":"hello","count":10,"sale":0}}` + "\n")
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		_, _ = w.Write(body)
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	req, err := newRequest("GET", "http://"+ln.Addr().String()+"/hello", nil)
	if err != nil {
		return row{name: "plain", err: err}
	}
	r := newRow("plain", b.timed(false).run(ctx, func(int64) request { return req }))
	r.note = "client CPU includes the in-process server"
	return r
}

// burst is the flash crowd: burst-buyers distinct buyers (tokens minted beforehand), each
// pressing "buy" once, for burst-units units, over conns connections; then the full check.
// It is load.Burst's crowd (same users, same Idempotency-Keys) sent by the bench's client.
func (b *bench) burst(ctx context.Context, base int64) row {
	const name = "burst"
	cfg := b.cfg
	cfg.Buyers, cfg.Units, cfg.Conns, cfg.UserBase = b.burstBuyers, b.burstUnits, b.conns, base
	id, err := load.CreateCommodity(ctx, b.client, cfg, "flash-sale", cfg.Units)
	if err != nil {
		return row{name: name, err: err}
	}
	toks, tmpl, err := b.buyers(id, base+1, cfg.Buyers)
	if err != nil {
		return row{name: name, err: err}
	}
	key := func(seq int64) string { return "press-" + strconv.FormatInt(seq, 10) + "-1" }
	l := loop{conns: b.conns, newConn: b.newConn, orders: true, n: int64(cfg.Buyers)}
	m := l.run(ctx, func(seq int64) request {
		r := tmpl
		r.bearer, r.user, r.key = toks[seq], base+1+seq, key(seq)
		return r
	})
	r := newRow(name, m)
	res := load.Result{Commodity: id, Replies: replies(m.samples, key), Elapsed: m.elapsed}
	b.check(ctx, &r, cfg, res)
	if r.err == nil {
		b.hot = id
	}
	return r
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

// timed is the closed loop of the timed scenarios.
func (b *bench) timed(orders bool) loop {
	return loop{conns: b.conns, newConn: b.newConn, orders: orders, d: b.duration}
}

// newConn returns a connection of the client chosen by -client.
func (b *bench) newConn() conn {
	if b.netHTTP {
		return &httpConn{c: b.client}
	}
	return newRawConn()
}

// soldOut creates one unit, sells it, and then lets distinct users (cycling through a
// pre-minted pool) press "buy" for the whole duration: every one must hear "sold out".
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
	m := b.timed(true).run(ctx, func(seq int64) request {
		r := tmpl
		i := int(seq % int64(len(toks)))
		r.bearer, r.user, r.key = toks[i], base+2+int64(i), key(seq)
		return r
	})
	r := newRow(name, m)
	if b.soldOutKeys {
		r.note = "buys carry an Idempotency-Key"
	} else {
		r.note = "buys carry no Idempotency-Key (answered by order-web's sold-out mark)"
	}

	// Every press must be refused as sold out. An answer that the load explains (busy, slow
	// down, no answer) is only reported; a sale, or any other refusal, breaks the contract.
	soldOut := intern("sold out")
	wrong := map[string]int{}
	for _, s := range m.samples {
		switch {
		case s.reason == soldOut && s.status == http.StatusConflict:
		case s.failed || s.status >= 500 || s.status == http.StatusTooManyRequests:
		default:
			wrong[fmt.Sprintf("%d %s", s.status, reasonName(s.reason))]++
		}
	}
	var unexpected []string
	for k, n := range wrong {
		unexpected = append(unexpected, fmt.Sprintf("%d buys at a sold-out commodity answered %s", n, k))
	}
	slices.Sort(unexpected)
	// For load.Check: the sale, every press that did not hear "sold out", and one that did
	// (which says sale must equal count). The rest add nothing to what it checks.
	res := load.Result{Commodity: id, Replies: []load.Reply{first}}
	soldOutSeen := false
	for _, s := range m.samples {
		if s.reason == soldOut && soldOutSeen {
			continue
		}
		soldOutSeen = soldOutSeen || s.reason == soldOut
		res.Replies = append(res.Replies, replies([]sample{s}, key)[0])
	}
	cfg := b.cfg
	_, v, err := load.Check(ctx, b.client, cfg, b.auditor, res)
	if err != nil {
		r.err = fmt.Errorf("check: %w", err)
		return r
	}
	r.checked, r.violations = true, append(unexpected, v...)
	return r
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
	r := newRow(name, b.timed(false).run(ctx, func(int64) request { return req }))
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

// sustained is buys that can all succeed, each by a new user: the rate at which the
// suite turns buyers into durable orders, counted when the payment record exists.
func (b *bench) sustained(ctx context.Context, base int64) row {
	const name = "sustained"
	id, err := load.CreateCommodity(ctx, b.client, b.cfg, "bench-sustained", b.sustainedUnits)
	if err != nil {
		return row{name: name, err: err}
	}
	toks, tmpl, err := b.buyers(id, base+1, b.sustainedUsers)
	if err != nil {
		return row{name: name, err: err}
	}
	key := func(seq int64) string { return "su-" + strconv.FormatInt(seq, 36) }
	var minted atomic.Int64 // users beyond the pre-minted pool
	secret := b.cfg.AuthSecret
	m := b.timed(true).run(ctx, func(seq int64) request {
		r := tmpl
		r.user, r.key = base+1+seq, key(seq)
		if seq < int64(len(toks)) {
			r.bearer = toks[seq]
		} else {
			t, _ := auth.Mint(secret, r.user, 2*time.Hour)
			r.bearer = "Bearer " + t
			minted.Add(1)
		}
		return r
	})
	r := newRow(name, m)
	if extra := minted.Load(); extra > 0 {
		r.note = fmt.Sprintf("%d tokens minted during the run; ", extra)
	}

	// Durable: orders whose payment record exists once the buys stop, allowing pay-wait
	// for the events in flight.
	deadline := time.Now().Add(b.payWait)
	var au load.Audit
	for {
		au, err = b.auditor.Audit(ctx, id)
		if err == nil && au.Pending == 0 && au.Payments == au.Live && au.PaymentIDSum == au.LiveIDSum || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		r.err = fmt.Errorf("audit: %w", err)
		return r
	}
	r.durable = float64(au.Payments) / m.elapsed.Seconds()
	r.note += fmt.Sprintf("%d orders; %d had a payment record when counted (at most %v after the buys stopped); durable orders/s = those / %v",
		au.Live, au.Payments, b.payWait, m.elapsed.Round(time.Millisecond))

	res := load.Result{Commodity: id, Replies: replies(m.samples, key), Elapsed: m.elapsed}
	_, v, err := load.Check(ctx, b.client, b.cfg, b.auditor, res)
	if err != nil {
		r.err = fmt.Errorf("check: %w", err)
		return r
	}
	r.checked, r.violations = true, v
	return r
}

// buyers mints the tokens of n buyers, users first, first+1, ..., and prepares the buy
// of commodity id they send.
func (b *bench) buyers(id, first int64, n int) ([]string, request, error) {
	toks, err := mintRange(b.cfg.AuthSecret, first, n)
	if err != nil {
		return nil, request{}, err
	}
	tmpl, err := newRequest("POST", b.cfg.OrderURL+"/order/sell", fmt.Appendf(nil, `{"id":%d}`, id))
	return toks, tmpl, err
}

// mintRange mints n tokens for users first, first+1, ... as ready "Bearer ..." header
// values, on every CPU.
func mintRange(secret string, first int64, n int) ([]string, error) {
	out := make([]string, n)
	workers := runtime.NumCPU()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				t, err := auth.Mint(secret, first+int64(i), 2*time.Hour)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = "Bearer " + t
			}
		}()
	}
	wg.Wait()
	return out, errors.Join(errs...)
}

// loadAvg is the machine's 1, 5 and 15 minute load averages, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// webURL is an http:// URL reaching a web service that listens on addr.
func webURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// moduleRoot is the nearest directory above the working directory holding go.mod.
func moduleRoot() string {
	dir, err := os.Getwd()
	if err != nil {
		return "."
	}
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			return dir
		}
	}
}
