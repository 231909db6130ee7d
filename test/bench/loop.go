package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"secbuy/test/load"
)

// sample is one answered request. It holds no pointers, so a run's samples (up to a
// million) cost the garbage collector nothing to keep.
type sample struct {
	latency time.Duration
	at      time.Duration // when the answer came, from the start of the run
	user    int64
	order   int64
	seq     int64 // the request's number in the run; a buy's Idempotency-Key is derived from it
	status  int32
	reason  uint16 // index into reasons
	failed  bool   // no HTTP answer at all
}

// reasons interns reply reasons ("ok", "sold out", ...) so samples carry a small index.
var reasons = struct {
	sync.Mutex
	idx   map[string]uint16
	names []string
}{idx: map[string]uint16{}}

func intern(s string) uint16 {
	reasons.Lock()
	defer reasons.Unlock()
	if i, ok := reasons.idx[s]; ok {
		return i
	}
	i := uint16(len(reasons.names))
	reasons.names = append(reasons.names, s)
	reasons.idx[s] = i
	return i
}

func reasonName(i uint16) string {
	reasons.Lock()
	defer reasons.Unlock()
	return reasons.names[i]
}

var (
	reasonOK      = intern("ok")
	reasonPending = intern("pending")
	reasonError   = intern("error")
	reasonSoldOut = intern("sold out")
)

// outcome sorts s into the progress line's kinds, as load.Reply.Outcome does a reply.
func (s sample) outcome() load.Outcome {
	switch {
	case s.failed:
		return load.OutcomeOther
	case s.reason == reasonOK:
		return load.OutcomeOK
	case s.reason == reasonPending:
		return load.OutcomePending
	case s.reason == reasonSoldOut:
		return load.OutcomeSoldOut
	case s.status == http.StatusServiceUnavailable || s.status == http.StatusTooManyRequests:
		return load.OutcomeBusy
	}
	return load.OutcomeOther
}

// worker is one connection's loop state: its connection and a memo of the error bodies
// seen, since a crowd gets the same few refusals byte for byte.
type worker struct {
	t0      time.Time // the start of the run
	conn    conn
	memo    map[string]uint16
	samples []sample
	lastErr error
	tally   *load.Tally // the progress line's counts (nil: no line)
}

const memoMax = 64

// do sends req, reads the whole reply and records the outcome, with the latency from due
// (when the request was meant to be sent). orders says whether to parse the order id out
// of the reply (buys); a read's 200 is never parsed.
func (w *worker) do(req *request, seq int64, orders bool, due time.Time) {
	s := sample{user: req.user, seq: seq}
	var status int
	var body []byte
	var err error
	if req.ticket != nil {
		var sell request
		if sell, status, body, err = w.withTicket(req); err == nil && status == http.StatusOK {
			status, body, err = w.conn.do(&sell)
		}
	} else {
		status, body, err = w.conn.do(req)
	}
	now := time.Now()
	s.latency, s.at = now.Sub(due), now.Sub(w.t0)
	s.status = int32(status)
	if err != nil {
		s.failed, s.reason, w.lastErr = true, reasonError, err
		w.samples = append(w.samples, s)
		return
	}
	switch status {
	case http.StatusOK, http.StatusAccepted:
		s.reason = reasonOK
		if status == http.StatusAccepted {
			s.reason = reasonPending
		}
		if orders {
			s.order = orderID(body)
		}
	default:
		if i, ok := w.memo[string(body)]; ok {
			s.reason = i
			break
		}
		s.reason = intern(detail(s.status, body))
		if len(w.memo) < memoMax {
			w.memo[string(body)] = s.reason
		}
	}
	w.samples = append(w.samples, s)
}

// withTicket gets a ticket for req's buy (GET /order/ticket, on the same connection) and
// does its proof of work, as the buyer's page does: the buy with the ticket in its body,
// and 200; or the ticket's refusal (status and body), the press's answer.
func (w *worker) withTicket(req *request) (request, int, []byte, error) {
	get := *req.ticket
	get.bearer, get.user = req.bearer, req.user
	status, body, err := w.conn.do(&get)
	if err != nil || status != http.StatusOK {
		return request{}, status, body, err
	}
	var r struct {
		Ticket *load.Ticket `json:"ticket"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Ticket == nil {
		return request{}, status, body, fmt.Errorf("ticket reply %.100q", body)
	}
	sell, err := newRequest(req.method, req.url.String(), load.SellBody(req.sid, *r.Ticket))
	sell.bearer, sell.key, sell.user = req.bearer, req.key, req.user
	return sell, status, body, err
}

// orderID returns the order id of a buy's reply (0 if none).
func orderID(body []byte) int64 {
	var r struct {
		Order *struct {
			ID int64 `json:"id"`
		} `json:"order"`
	}
	if json.Unmarshal(body, &r) != nil || r.Order == nil {
		return 0
	}
	return r.Order.ID
}

// detail returns the error detail of a refusal, as load.Buy names it.
func detail(status int32, body []byte) string {
	var r struct {
		Error *struct {
			Detail string `json:"detail"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &r) == nil && r.Error != nil && r.Error.Detail != "" {
		return r.Error.Detail
	}
	return fmt.Sprintf("status %d", status)
}

// measured is what a loop (or a load.Burst) produced.
type measured struct {
	samples []sample
	elapsed time.Duration
	offered float64 // the open loop's rate (0: a closed loop)
	// commodity is the one the requests bought (0: none, or several).
	commodity int64
	cpu       float64 // this process's CPU time over the wall time: cores busy
	lastErr   error   // one transport error, if any
}

// loop is a run of requests over conns connections, each a worker with its own
// connection. In a closed loop (rate 0) each worker sends its next request as soon as the
// previous one was answered: the offered load is what the server sustains with conns
// requests in flight. In an open loop requests are due at a fixed rate, whatever the
// answers do, and each one's latency counts from when it was due, so a stall shows as the
// latency of every request that waited behind it (the coordinated-omission fix of wrk2 and
// vegeta); a request that finds every connection busy waits for one. next returns the
// request numbered seq; seq counts from 0 across all workers, so each request can have its
// own user. On a terminal, a run with a label shows a live progress line under that label.
type loop struct {
	label   string
	conns   int
	newConn func() conn
	orders  bool    // parse order ids out of successful replies (buys)
	rate    float64 // requests per second of an open loop; 0: a closed loop
	// The loop stops at the first of: d has passed (0: no limit), n requests were sent
	// (0: no limit), ctx ended.
	d time.Duration
	n int64
}

func (l loop) run(ctx context.Context, next func(seq int64) request) measured {
	var (
		wg      sync.WaitGroup
		workers = make([]*worker, l.conns)
		start   = make(chan struct{})
		t0      time.Time
	)
	due := make(chan int64, 4*l.conns) // the open loop's requests, by number
	var seq atomic.Int64               // the closed loop's next request number
	// take returns the worker's next request number and when it is due, or false at the end.
	take := func(deadline time.Time) (int64, time.Time, bool) {
		if l.rate > 0 {
			n, ok := <-due
			return n, t0.Add(time.Duration(float64(n) / l.rate * float64(time.Second))), ok
		}
		n := seq.Add(1) - 1
		if ctx.Err() != nil || (l.n > 0 && n >= l.n) || (l.d > 0 && time.Now().After(deadline)) {
			return 0, time.Time{}, false
		}
		return n, time.Now(), true
	}
	var tally *load.Tally
	stopProgress := func() {}
	if l.label != "" {
		tally, stopProgress = load.ShowProgress(os.Stdout, l.label, l.total(), l.d)
	}
	for i := range workers {
		w := &worker{conn: l.newConn(), memo: map[string]uint16{}, samples: make([]sample, 0, 1024), tally: tally}
		workers[i] = w
		wg.Go(func() {
			defer w.conn.close()
			<-start
			w.t0 = t0
			deadline := t0.Add(l.d)
			for {
				n, at, ok := take(deadline)
				if !ok {
					return
				}
				req := next(n)
				w.tally.Sent()
				w.do(&req, n, l.orders, at)
				if w.tally != nil {
					s := w.samples[len(w.samples)-1]
					w.tally.Answered(s.outcome(), s.latency)
				}
			}
		})
	}
	cpu0 := cpuTime()
	t0 = time.Now()
	close(start)
	if l.rate > 0 {
		l.pace(ctx, t0, due)
	}
	wg.Wait()
	r := measured{elapsed: time.Since(t0)}
	stopProgress()
	if l.rate > 0 {
		r.offered = l.rate
	}
	r.cpu = (cpuTime() - cpu0).Seconds() / r.elapsed.Seconds()
	n := 0
	for _, w := range workers {
		n += len(w.samples)
	}
	r.samples = make([]sample, 0, n)
	for _, w := range workers {
		r.samples = append(r.samples, w.samples...)
		if w.lastErr != nil {
			r.lastErr = w.lastErr
		}
	}
	return r
}

// total is how many requests the loop sends at most (0: not known).
func (l loop) total() int64 {
	switch {
	case l.rate > 0 && l.d > 0 && l.n > 0:
		return min(l.n, int64(l.d.Seconds()*l.rate)+1)
	case l.rate > 0 && l.d > 0:
		return int64(l.d.Seconds()*l.rate) + 1
	}
	return l.n
}

// pace puts the numbers of the open loop's requests on due as they fall due (checking the
// clock every millisecond, so a burst of at most a millisecond's worth goes at once), until
// d has passed, n were sent or ctx ended; then it closes due.
func (l loop) pace(ctx context.Context, t0 time.Time, due chan<- int64) {
	defer close(due)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var sent int64
	for ctx.Err() == nil {
		el := time.Since(t0)
		if l.d > 0 && el >= l.d {
			return
		}
		for upto := int64(el.Seconds()*l.rate) + 1; sent < upto; sent++ {
			if l.n > 0 && sent >= l.n {
				return
			}
			select {
			case due <- sent:
			case <-ctx.Done():
				return
			}
		}
		<-tick.C
	}
}

// fromResult turns a load.Burst result into samples.
func fromResult(res load.Result, cpu float64) measured {
	r := measured{elapsed: res.Elapsed, cpu: cpu, samples: make([]sample, len(res.Replies))}
	for i, rep := range res.Replies {
		r.samples[i] = sample{latency: rep.Latency, user: rep.User, order: rep.OrderID,
			status: int32(rep.Status), reason: intern(rep.Reason), failed: rep.Err != nil}
		if rep.Err != nil {
			r.lastErr = rep.Err
		}
	}
	return r
}

// replies turns samples of buys back into load.Reply values for load.Check; key gives
// each buy's Idempotency-Key from its number ("" for none).
func replies(ss []sample, key func(seq int64) string) []load.Reply {
	out := make([]load.Reply, len(ss))
	for i, s := range ss {
		out[i] = load.Reply{User: s.user, Status: int(s.status), Reason: reasonName(s.reason),
			OrderID: s.order, Key: key(s.seq), Latency: s.latency}
		if s.failed {
			out[i].Err = errors.New("no answer")
		}
	}
	return out
}

// stats summarises a run's samples.
type stats struct {
	requests      int
	rate          float64
	p50, p99, max time.Duration
	ok            int
	errors        int            // requests without an answer, or answered 5xx
	others        map[string]int // every reason but "ok"
}

func summarise(r measured) stats {
	st := stats{requests: len(r.samples), others: map[string]int{}}
	if r.elapsed > 0 {
		st.rate = float64(len(r.samples)) / r.elapsed.Seconds()
	}
	if len(r.samples) == 0 {
		return st
	}
	lat := make([]time.Duration, len(r.samples))
	counts := map[uint16]int{}
	for i, s := range r.samples {
		lat[i] = s.latency
		counts[s.reason]++
		if s.failed || s.status >= 500 {
			st.errors++
		}
	}
	slices.Sort(lat)
	at := func(p float64) time.Duration { return lat[int(float64(len(lat)-1)*p/100)] }
	st.p50, st.p99, st.max = at(50), at(99), lat[len(lat)-1]
	for i, n := range counts {
		if i == reasonOK {
			st.ok = n
		} else {
			st.others[reasonName(i)] = n
		}
	}
	return st
}

// otherString lists the reasons other than "ok", most frequent first.
func (st stats) otherString() string {
	if len(st.others) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(st.others))
	for k := range st.others {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if st.others[keys[i]] != st.others[keys[j]] {
			return st.others[keys[i]] > st.others[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s %d", k, st.others[k])
	}
	return strings.Join(parts, ", ")
}

// cpuTime is this process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
