// Command bench is secbuy's sale-day benchmark, run by `make bench` against the suite that
// `scripts/suite.sh up` started. It drives the public HTTP API with a Go load client, runs
// the scenarios below, checks every invariant of shared/DESIGN.md after each, and prints one
// table, with each scenario's rate as a ratio to a plain net/http server in a process of its
// own (hello), measured by the same client, over the same connections, in the same run.
//
//	hello      the baseline: a plain net/http server, a process of its own, a fixed reply
//	burst      20,000 distinct buyers, 1,000 units, 64 connections, each with a key
//	burst-ticket  the burst for a commodity that requires a ticket: each press gets one
//	           (GET /order/ticket) and buys with it, as the buyer's page does
//	soldout    buys by distinct users, each with a key, at a commodity already sold out
//	readstorm  GET /stock/get on the hot commodity (buyers refreshing the page)
//	sustained  buys that all can succeed; durable orders/s counts orders that have their
//	           payment record when the run ends
//	buckets    sustained buys (closed loop) on commodities of K = 1, 2, 4, 8 stock buckets
//	crowd      100,000 distinct buyers, 10,000 units, 1,024 connections, every one with an
//	           Idempotency-Key, 10% pressing twice
//	original   the 2019 original's test: 500 buyers, 10 units, all at once
//	observe    the burst with the routes' request counting off and on (three of each,
//	           restarting the suite), and with tracing on: what the metrics cost
//	two        last, as it restarts the suite: two instances of everything behind HAProxy,
//	           sold-out buys direct, through the balancer to one and to two edge
//	           instances, and sustained buys (see two.go)
//
// Two ways to load: a closed loop (N connections, each sending its next request as soon as
// the last was answered: the most the suite sustains with N in flight), and an open loop
// (requests due at a fixed rate whatever the answers, latency counted from when each was
// due). For hello, soldout and sustained, a capacity sweep steps the open loop's rate up until p99
// passes 100 ms or a request fails: the highest rate that held is the capacity, the figure
// a shop plans with.
//
// It exits 1 only if an invariant breaks or a scenario cannot run; latency and rate are
// reported, never asserted.
//
//	make bench ARGS='-scenarios burst,soldout -duration 5s'
//	make bench ARGS='-json out.json -profile /tmp/prof'
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
	"strings"
	"sync"
	"syscall"
	"time"

	"secbuy/basic/auth"
	"secbuy/basic/config"
	"secbuy/basic/connect"
	"secbuy/test/load"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

// baseline is what the hello scenario measured: its closed-loop rate and its open-loop
// capacity (0: not measured), against which the other scenarios' are given.
type baseline struct{ rate, capacity float64 }

// scenarioNames are the scenarios in the order they run.
var scenarioNames = []string{"hello", "burst", "burst-ticket", "soldout", "readstorm", "sustained", "buckets", "crowd", "original", "observe", "two"}

// opts are the command's flags.
type opts struct {
	duration       time.Duration
	conns          int
	openConns      int
	burstBuyers    int
	burstUnits     int64
	scenarios      map[string]bool
	settle         time.Duration
	payWait        time.Duration
	soldOutUsers   int
	soldOutKeys    bool
	sustainedUsers int
	sustainedUnits int64
	crowdBuyers    int
	crowdUnits     int64
	crowdConns     int
	sweep          bool
	step           time.Duration
	runDir         string
	netHTTP        bool
	jsonFile       string
	profileDir     string
}

// bench is one run: the configuration, the shared client and what the scenarios found.
type bench struct {
	opts
	cfg     load.Config // URLs, secrets, registry; per scenario copies set the rest
	client  *http.Client
	auditor *load.Auditor
	nats    connect.NATS // the registry the auditor looks in
	prof    *profiler
	base    int64 // user ids of this run start above base
	hot     int64 // the hot commodity (the burst's), for the read storm
	hello   baseline
	rows    []row
	rss     string // the one-instance suite's peak memory, read before two restarts it
	// scenario is the one running, whose name labels its loops' progress lines.
	scenario string
}

func run() error {
	hello := flag.String("serve-hello", "", "run as the hello server on this address (the bench starts itself so)")
	o, err := parseFlags()
	if err != nil {
		return err
	}
	if *hello != "" {
		return serveHello(*hello)
	}
	raiseFileLimit()
	c, err := config.Load()
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := newBench(o, c)
	if err != nil {
		return err
	}
	b.header()
	b.runScenarios(ctx)
	fmt.Printf("\nload average at the end: %s (other work on this machine lowers every rate)\n", loadAvg())
	printTable(os.Stdout, b.rows, b.hello)
	printNotes(os.Stdout, b)
	if b.rss == "" {
		b.rss = rssLine(o.runDir)
	}
	fmt.Print(b.rss)
	if o.jsonFile != "" {
		if err := writeJSON(o.jsonFile, b.rows, b.hello); err != nil {
			return err
		}
	}
	return b.verdict()
}

// parseFlags reads the command line.
func parseFlags() (opts, error) {
	var o opts
	var names string
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "length of each timed closed-loop scenario (hello, soldout, readstorm, sustained)")
	flag.IntVar(&o.conns, "conns", 64, "connections of the closed loop")
	flag.IntVar(&o.openConns, "open-conns", 1024, "connections the open loop may use (a request due while all are busy waits)")
	flag.IntVar(&o.burstBuyers, "burst-buyers", 20000, "distinct buyers in the burst")
	flag.Int64Var(&o.burstUnits, "burst-units", 1000, "units on sale in the burst")
	flag.StringVar(&names, "scenarios", strings.Join(scenarioNames, ","), "comma-separated scenarios to run")
	flag.DurationVar(&o.settle, "settle", 30*time.Second, "how long a check waits for pending orders and payments")
	flag.DurationVar(&o.payWait, "pay-wait", 5*time.Second, "how long after a sustained run payments may still appear to count as durable")
	flag.IntVar(&o.soldOutUsers, "soldout-users", 20000, "pre-minted users the sold-out buys cycle through")
	flag.BoolVar(&o.soldOutKeys, "soldout-keys", true, "sold-out buys carry an Idempotency-Key (false: none, as a plain page would send)")
	flag.IntVar(&o.sustainedUsers, "sustained-users", 150000, "users pre-minted for the sustained closed loop")
	flag.Int64Var(&o.sustainedUnits, "sustained-units", 2_000_000, "units of each sustained commodity (never sold out)")
	flag.IntVar(&o.crowdBuyers, "crowd-buyers", 100000, "distinct buyers in the crowd")
	flag.Int64Var(&o.crowdUnits, "crowd-units", 10000, "units on sale for the crowd")
	flag.IntVar(&o.crowdConns, "crowd-conns", 1024, "connections of the crowd")
	flag.BoolVar(&o.sweep, "sweep", true, "find the open-loop capacity of hello, soldout and sustained")
	flag.DurationVar(&o.step, "step", 3*time.Second, "length of each step of a capacity sweep")
	client := flag.String("client", "raw", "raw: the bench's lean HTTP/1.1 keep-alive client; net/http: load.Client, to compare")
	flag.StringVar(&o.runDir, "run-dir", "", "where scripts/suite.sh keeps its pid files (default: run/ at the module root)")
	flag.StringVar(&o.jsonFile, "json", "", "also write the results to this file, one JSON object per scenario")
	flag.StringVar(&o.profileDir, "profile", "", "capture CPU and heap profiles of every service during each scenario, into this directory")
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
	if o.conns < 1 || o.openConns < 1 || o.duration <= 0 || o.step <= 0 || o.burstBuyers < 1 || o.burstUnits < 1 ||
		o.crowdBuyers < 1 || o.crowdUnits < 1 || o.crowdConns < 1 {
		return o, errors.New("-conns, -open-conns, -duration, -step and the buyers and units must be positive")
	}
	if o.runDir == "" {
		o.runDir = filepath.Join(moduleRoot(), "run")
	}
	return o, nil
}

// raiseFileLimit lifts this process's open-file limit to the most allowed: a crowd of a
// thousand connections needs more descriptors than the common default of 1,024.
func raiseFileLimit() {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) == nil && l.Cur < l.Max {
		l.Cur = l.Max
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l)
	}
}

// newBench aims a run at the suite that c describes.
func newBench(o opts, c config.Config) (*bench, error) {
	prof, err := newProfiler(o.profileDir, o.runDir)
	if err != nil {
		return nil, err
	}
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
		prof:   prof,
		nats:   connect.NATSOf(c),
		client: load.Client(o.conns),
		// Distinct users per run (and per scenario, below), so runs never meet each other's
		// orders: one user may hold one live order per commodity.
		base: time.Now().Unix() % 100000 * 100_000_000,
	}
	if b.needsSuite() {
		b.auditor = load.NewAuditorOn(b.nats)
	}
	return b, nil
}

// header says what the run measures with.
func (b *bench) header() {
	kind := "raw HTTP/1.1 over kept-alive TCP connections"
	if b.netHTTP {
		kind = "net/http's client"
	}
	fmt.Printf("secbuy bench on %d CPUs (the load client shares them with the services); load average %s\n", runtime.NumCPU(), loadAvg())
	fmt.Printf("load client: Go, %s; closed loop: %d connections; open loop: up to %d connections, latency from each request's due time; %v per timed scenario, %v per sweep step\n",
		kind, b.conns, b.openConns, b.duration, b.step)
}

// runScenarios runs the chosen scenarios in order, each with users of its own, each under
// the profiler if one was asked for.
func (b *bench) runScenarios(ctx context.Context) {
	one := func(f func(context.Context, int64) row) func(context.Context, int64) []row {
		return func(ctx context.Context, base int64) []row { return []row{f(ctx, base)} }
	}
	steps := []struct {
		name string
		fn   func(context.Context, int64) []row
	}{
		{"hello", one(b.helloBaseline)}, {"burst", one(b.burst)}, {"burst-ticket", one(b.burstTicket)}, {"soldout", one(b.soldOut)}, {"readstorm", one(b.readStorm)},
		{"sustained", one(b.sustained)}, {"buckets", b.buckets}, {"crowd", one(b.crowd)}, {"original", one(b.original)},
		{"observe", b.observe}, {"two", b.two},
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
		b.scenario = s.name
		if s.name == "two" {
			b.rss = rssLine(b.runDir)
		}
		var rs []row
		b.prof.during(s.name, b.duration, func() { rs = s.fn(ctx, b.base+int64(i)*10_000_000) })
		for _, r := range rs {
			if r.err != nil {
				fmt.Fprintf(os.Stderr, "bench: %s: %v\n", r.name, r.err)
			}
			if s.name == "hello" && r.err == nil {
				b.hello = baseline{rate: r.stats.rate, capacity: r.capacity}
			}
			b.rows = append(b.rows, r)
		}
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
	capacity   float64 // the open loop's capacity, requests/s (0: not swept)
	durable    float64 // durable orders/s (sustained only; 0 elsewhere)
	checked    bool    // whether invariants were checked
	violations []string
	note       string
	err        error
}

func newRow(name string, r measured) row {
	return row{name: name, run: r, stats: summarise(r)}
}

// closed is the closed loop of the timed scenarios.
func (b *bench) closed(orders bool) loop {
	return loop{label: b.scenario, conns: b.conns, newConn: b.newConn, orders: orders, d: b.duration}
}

// open is an open loop at rate for d.
func (b *bench) open(rate float64, d time.Duration) loop {
	return loop{label: fmt.Sprintf("%s at %.0f/s", b.scenario, rate), conns: b.openConns, newConn: b.newConn, orders: true, rate: rate, d: d}
}

// newConn returns a connection of the client chosen by -client.
func (b *bench) newConn() conn {
	if b.netHTTP {
		return &httpConn{c: load.Client(b.openConns)}
	}
	return newRawConn()
}

// buyers mints the tokens of n buyers, users first, first+1, ..., and prepares the buy
// of commodity id they send.
func (b *bench) buyers(id, first int64, n int) ([]string, request, error) {
	return b.buyersAt(b.cfg.OrderURL, id, first, n)
}

// mintRange mints n tokens for users first, first+1, ... as ready "Bearer ..." header
// values, on every CPU.
func mintRange(secret string, first int64, n int) ([]string, error) {
	out := make([]string, n)
	workers := runtime.NumCPU()
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < n; i += workers {
				t, err := auth.Mint(secret, first+int64(i), 2*time.Hour)
				if err != nil {
					errs[w] = err
					return
				}
				out[i] = "Bearer " + t
			}
		})
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
