package test

// The failover suite: two instances of every service, HAProxy in front of the web ones (as
// `make up INSTANCES=2` runs them), and a crowd of buyers while one instance is killed
// (kill -9), stopped (SIGTERM) or started. Each buyer resends on 503 with the same
// Idempotency-Key after Retry-After, as the README tells clients. After each crowd every
// invariant is checked (load.Check), and what the buyers saw is measured: how many presses
// needed a resend, the latency of every request, and how soon after the fault the answers
// came at the two-instance rate again.

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"secbuy/test/load"
	"secbuy/test/suite"
)

// failoverCrowd is one crowd: every buyer presses once (resending as told) over conns
// connections through the load balancer.
type failoverCrowd struct {
	buyers, units, conns int
}

// crowdRun is what a crowd saw.
type crowdRun struct {
	res       load.Result // each buyer's final answer
	start     time.Time
	answered  []time.Time // when each request was answered, in order
	latencies []time.Duration
	resent    int // presses that needed at least one resend
	resends   int // resends in all
	// The side traffic through stock-web (reads) and payment-web (every tenth buyer pays
	// at once): requests, and those that needed a resend.
	sideRequests, sideResent int
}

// p99 is the 99th percentile of every request's latency.
func (r crowdRun) p99() time.Duration {
	ls := slices.Clone(r.latencies)
	slices.Sort(ls)
	return ls[len(ls)*99/100]
}

// rate is the answers per second in [from, to) after the start.
func (r crowdRun) rate(from, to time.Duration) float64 {
	n := 0
	for _, a := range r.answered {
		if d := a.Sub(r.start); d >= from && d < to {
			n++
		}
	}
	return float64(n) / (to - from).Seconds()
}

// recovered returns how long after the fault (at, from the start) the answers came at
// least at share of the rate of the second before it again, over a 500 ms window; or -1 if
// they never did while the crowd ran.
func (r crowdRun) recovered(at time.Duration, share float64) time.Duration {
	before := r.rate(at-time.Second, at)
	end := r.answered[len(r.answered)-1].Sub(r.start)
	for d := at; d+500*time.Millisecond <= end; d += 100 * time.Millisecond {
		if r.rate(d, d+500*time.Millisecond) >= share*before {
			return d - at
		}
	}
	return -1
}

func TestFailover(t *testing.T) {
	s := suite.NewScaled(t, 2, append(append([]string{}, chaosEnv...),
		fmt.Sprintf("SECBUY_RATE_KEY_PREFIX=failover-%d:", time.Now().UnixNano())))
	cfg := load.Config{
		StockURL: s.URL("stock-web"), OrderURL: s.URL("order-web"), PaymentURL: s.URL("payment-web"),
		AdminKey: suite.AdminKey, AuthSecret: suite.AuthSecret, NATSURL: s.NATSURL, Settle: 30 * time.Second,
	}
	waitReady(t, s, cfg)
	crowd := failoverCrowd{buyers: 6000, units: 6000, conns: 128}

	// No fault: both instances of each srv take a fair share of the calls.
	before := srvCalls(t, s)
	run := runCrowd(t, cfg, crowd, nil)
	checkCrowd(t, cfg, run, "no fault")
	// (payment-srv takes no call on the way of a buy: its instances share the events.)
	for _, svc := range []string{"stock-srv", "order-srv"} {
		a := srvCalls(t, s)[svc+"-1"] - before[svc+"-1"]
		b := srvCalls(t, s)[svc+"-2"] - before[svc+"-2"]
		if a+b == 0 {
			t.Fatalf("%s: no calls counted on either instance's /metrics", svc)
		}
		share := a / (a + b)
		t.Logf("%s: instance 1 served %.0f calls, instance 2 %.0f (%.0f%% / %.0f%%)", svc, a, b, 100*share, 100*(1-share))
		if share < 0.3 || share > 0.7 {
			t.Errorf("%s: the two instances served %.0f and %.0f calls: not balanced", svc, a, b)
		}
	}
	baseP99 := run.p99()

	for _, unit := range []string{"order-srv-1", "stock-srv-1", "payment-srv-1", "order-web-1", "stock-web-1", "payment-web-1"} {
		t.Run("kill -9 "+unit, func(t *testing.T) {
			at := 1500 * time.Millisecond // a second of steady buying before it
			run := runCrowd(t, cfg, crowd, map[time.Duration]func(){at: func() { s.Kill(unit) }})
			checkCrowd(t, cfg, run, "kill -9 "+unit)
			if limit := crowd.buyers / 50; run.resent > limit {
				t.Errorf("%d presses needed a resend (more than 2%% of %d)", run.resent, crowd.buyers)
			}
			if p := run.p99(); p >= time.Second {
				t.Errorf("p99 %v over the crowd (1 s at most; %v without a fault)", p, baseP99)
			}
			rec := run.recovered(at, 0.7)
			t.Logf("kill -9 %s: %d of %d presses resent (%d resends), p99 %v (no fault: %v), rate before %.0f/s, back within %v; %d of %d reads and payments resent",
				unit, run.resent, crowd.buyers, run.resends, run.p99().Round(time.Millisecond), baseP99.Round(time.Millisecond),
				run.rate(at-time.Second, at), rec, run.sideResent, run.sideRequests)
			if rec < 0 || rec > 2*time.Second {
				t.Errorf("the answers did not come back to 70%% of the rate before the kill within 2 s (%v)", rec)
			}
			s.Start(unit)
			s.WaitReady(unit, 30*time.Second)
		})
	}

	for _, unit := range []string{"order-srv-2", "stock-srv-2", "payment-srv-2", "order-web-2", "stock-web-2", "payment-web-2"} {
		t.Run("SIGTERM "+unit, func(t *testing.T) {
			done := make(chan struct{})
			run := runCrowd(t, cfg, crowd, map[time.Duration]func(){800 * time.Millisecond: func() {
				go func() { s.Stop(unit); close(done) }()
			}})
			<-done
			checkCrowd(t, cfg, run, "SIGTERM "+unit)
			t.Logf("SIGTERM %s: %d presses resent, p99 %v; %d of %d reads and payments resent",
				unit, run.resent, run.p99().Round(time.Millisecond), run.sideResent, run.sideRequests)
			if run.resent > 0 || run.sideResent > 0 {
				t.Errorf("%d presses and %d reads or payments needed a resend during a graceful stop (none may)", run.resent, run.sideResent)
			}
			s.Start(unit)
			s.WaitReady(unit, 30*time.Second)
		})
	}

	// A rolling upgrade: every instance in turn is stopped (SIGTERM), started again and
	// waited for, while crowds keep buying; no press may need a resend.
	t.Run("rolling upgrade", func(t *testing.T) {
		rolled := make(chan struct{})
		go func() {
			defer close(rolled)
			for _, u := range s.Units() {
				s.Stop(u)
				s.Start(u)
				s.WaitReady(u, 30*time.Second)
			}
		}()
		crowds := 0
		for done := false; !done; {
			select {
			case <-rolled:
				done = true
			default:
			}
			run := runCrowd(t, cfg, failoverCrowd{buyers: 2000, units: 2000, conns: 64}, nil)
			checkCrowd(t, cfg, run, fmt.Sprintf("rolling upgrade, crowd %d", crowds+1))
			if run.resent > 0 || run.sideResent > 0 {
				t.Errorf("crowd %d: %d presses and %d reads or payments needed a resend", crowds+1, run.resent, run.sideResent)
			}
			crowds++
		}
		t.Logf("%d crowds bought while all %d instances were replaced one by one", crowds, len(s.Units()))
	})

	// A new instance, started mid-sale, takes calls within 5 s of its start.
	t.Run("new instance mid-sale", func(t *testing.T) {
		s.Stop("order-srv-1")
		var started time.Time
		var took atomic.Int64
		run := runCrowd(t, cfg, failoverCrowd{buyers: 8000, units: 8000, conns: 128}, map[time.Duration]func(){
			500 * time.Millisecond: func() {
				started = time.Now()
				s.Start("order-srv-1")
				go func() {
					_ = suite.Eventually(10*time.Second, func() error {
						if srvCalls(t, s)["order-srv-1"] == 0 {
							return fmt.Errorf("no calls yet")
						}
						took.Store(int64(time.Since(started)))
						return nil
					})
				}()
			}})
		checkCrowd(t, cfg, run, "new instance")
		if err := suite.Eventually(10*time.Second, func() error {
			if took.Load() == 0 {
				return fmt.Errorf("order-srv-1 took no call")
			}
			return nil
		}); err != nil || time.Duration(took.Load()) > 5*time.Second {
			t.Errorf("order-srv-1, started mid-sale, took its first call after %v (5 s at most)", time.Duration(took.Load()))
		}
		t.Logf("order-srv-1, started mid-sale, took its first call %v after its start", time.Duration(took.Load()).Round(time.Millisecond))
	})
}

// runCrowd creates a commodity of crowd.units, releases crowd.buyers buyers over
// crowd.conns connections, and runs each fault at its moment after the start.
func runCrowd(t *testing.T, cfg load.Config, crowd failoverCrowd, faults map[time.Duration]func()) crowdRun {
	t.Helper()
	c := load.Client(crowd.conns + 32)
	defer c.CloseIdleConnections() // the next crowd's connections need the balancer's slots
	cfg.Buyers, cfg.Units, cfg.UserBase = crowd.buyers, int64(crowd.units), userBase.Add(1_000_000)
	id, err := createCommodity(cfg, c, cfg.Units)
	if err != nil {
		t.Fatal(err)
	}
	toks, err := load.Tokens(cfg)
	if err != nil {
		t.Fatal(err)
	}
	run := crowdRun{res: load.Result{Commodity: id, Replies: make([]load.Reply, crowd.buyers)}}
	var (
		mu      sync.Mutex
		next    atomic.Int64
		wg      sync.WaitGroup
		resent  atomic.Int64
		resends atomic.Int64
	)
	run.start = time.Now()
	var struck sync.WaitGroup
	var late atomic.Int32 // faults that struck after the crowd was over
	crowdOver := make(chan struct{})
	for at, f := range faults {
		struck.Add(1)
		time.AfterFunc(at, func() {
			defer struck.Done()
			select {
			case <-crowdOver:
				late.Add(1)
			default:
			}
			f()
		})
	}
	// Side traffic, resent on 503 like the buys: readers of the commodity's page, and
	// buyers who pay as soon as they are told the order is theirs.
	var sideRequests, sideResent atomic.Int64
	side := func(method, url, token string, body []byte) {
		sideRequests.Add(1)
		for attempt := 0; attempt < 20; attempt++ {
			code, err := load.Do(c, method, url, token, body, nil)
			if code != http.StatusServiceUnavailable && err == nil {
				return
			}
			if attempt == 0 {
				sideResent.Add(1)
			}
			time.Sleep(time.Second)
		}
	}
	crowdDone := make(chan struct{})
	var sideWG sync.WaitGroup
	for range 4 {
		sideWG.Go(func() {
			for {
				select {
				case <-crowdDone:
					return
				default:
				}
				side("GET", fmt.Sprintf("%s/stock/get?id=%d", cfg.StockURL, id), "", nil)
			}
		})
	}
	pays := make(chan int, crowd.buyers)
	for range 4 {
		sideWG.Go(func() {
			for b := range pays {
				side("POST", cfg.PaymentURL+"/payment/payorder", toks[b], fmt.Appendf(nil, `{"id":%d}`, run.res.Replies[b].OrderID))
			}
		})
	}
	// press sends buyer b's press, and resends it (same key) after Retry-After while it is
	// answered 503 or 202: in the background, as a buyer waiting does not hold up the others.
	var press func(b, attempt int)
	press = func(b, attempt int) {
		user := cfg.UserBase + int64(b) + 1
		r := load.Buy(context.Background(), c, cfg, toks[b], user, id, "press-"+strconv.Itoa(b))
		mu.Lock()
		run.answered = append(run.answered, time.Now())
		run.latencies = append(run.latencies, r.Latency)
		run.res.Replies[b] = r
		mu.Unlock()
		if r.Status != http.StatusServiceUnavailable && r.Status != http.StatusAccepted && r.Err == nil || attempt == 20 {
			if r.Reason == "ok" && b%10 == 0 {
				pays <- b
			}
			return
		}
		if attempt == 0 {
			resent.Add(1)
		}
		resends.Add(1)
		wg.Go(func() {
			time.Sleep(time.Second) // Retry-After: 1
			press(b, attempt+1)
		})
	}
	var workers sync.WaitGroup
	for range crowd.conns {
		workers.Go(func() {
			for {
				b := int(next.Add(1)) - 1
				if b >= crowd.buyers {
					return
				}
				press(b, 0)
			}
		})
	}
	workers.Wait()
	close(crowdOver)
	wg.Wait()
	run.res.Elapsed = time.Since(run.start)
	close(crowdDone)
	close(pays)
	sideWG.Wait()
	struck.Wait() // a fault must not strike what the next step starts
	if late.Load() > 0 {
		t.Errorf("the crowd of %d was over before %d of its faults struck: make it larger", crowd.buyers, late.Load())
	}
	run.resent, run.resends = int(resent.Load()), int(resends.Load())
	run.sideRequests, run.sideResent = int(sideRequests.Load()), int(sideResent.Load())
	return run
}

// checkCrowd checks every invariant after the crowd (load.Check resends what still has no
// final answer, follows pending orders and compares the services' audits with what the
// buyers were told).
func checkCrowd(t *testing.T, cfg load.Config, run crowdRun, what string) {
	t.Helper()
	a := load.NewAuditor(cfg.NATSURL)
	au, violations, err := load.Check(context.Background(), load.Client(32), cfg, a, run.res)
	if err != nil {
		t.Fatalf("%s: audit: %v", what, err)
	}
	for _, v := range violations {
		t.Errorf("%s: %s", what, v)
	}
	counts := run.res.Counts()
	t.Logf("%s: %d buyers in %v: %v; audit: %v", what, len(run.res.Replies), run.res.Elapsed.Round(time.Millisecond), counts, au)
	if au.Sale != au.Count && counts["sold out"] > 0 {
		t.Errorf("%s: sold out told while %d of %d units sold", what, au.Sale, au.Count)
	}
}

// srvCalls returns, for each srv instance, the calls it has served (go-micro's
// micro_request_total on its /metrics).
func srvCalls(t *testing.T, s *suite.Suite) map[string]float64 {
	out := map[string]float64{}
	for _, u := range s.Units() {
		if strings.HasSuffix(u, "-web") || strings.Contains(u, "-web-") {
			continue
		}
		resp, err := http.Get(s.InstanceURL(u) + "/metrics")
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			line := sc.Text()
			if !strings.HasPrefix(line, "micro_request_total{") {
				continue
			}
			if v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64); err == nil {
				out[u] += v
			}
		}
		resp.Body.Close()
	}
	return out
}
