package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"secbuy/basic/batch"
	"secbuy/basic/connect"
	"secbuy/basic/metrics"
	"secbuy/proto/outcome"
)

// GuardConfig configures a Guard; see the rate_* fields of basic/config.
type GuardConfig struct {
	// Redis is the server, with its credentials and TLS.
	Redis connect.Redis
	// KeyPrefix starts every Redis key the guard writes.
	KeyPrefix string
	// UserPerSec and IPPerSec are the requests allowed per second per user and per client
	// IP, with a burst of one second's worth; 0 means no limit.
	UserPerSec, IPPerSec int
	// IPExempt lists comma-separated CIDRs whose clients have no per-IP limit.
	IPExempt string
	// IPHeader, if set, names the header a trusted proxy puts the client address in; its
	// last address is used. Empty: the connection's address.
	IPHeader string
	// InflightTTL is how long an in-flight mark outlives the instance that holds it: the
	// holder renews its marks every third of it, so a mark lapses that long after its
	// instance died, while a slow press keeps its own for as long as it takes.
	InflightTTL time.Duration
}

// Guard is the abuse control at the web edge, shared by every instance through Redis: a
// per-user and a per-IP rate limit, and an "in flight" mark per user and item that turns
// away a second press while the first is being served.
//
// If Redis cannot be reached the Guard fails OPEN: requests are let through, unchecked,
// and a warning is logged at most every warnEvery. Availability wins here because nothing
// the Guard does is needed for correctness: the database constraints (one order per
// request id and per user and commodity, sale <= count) hold without it.
type Guard struct {
	rdb       *redis.Client
	prefix    string
	userEvery int64 // µs between requests at the user rate; 0: no limit
	userBurst int64
	ipEvery   int64
	ipBurst   int64
	exempt    []netip.Prefix
	ipHeader  string
	ttlMS     int64

	skipUntil atomic.Int64 // unix ns: Redis failed, not asked again before then
	warned    atomic.Int64 // unix ns of the last warning

	// The presses in flight at one moment send their scripts in one pipeline: one write and
	// one read for all, instead of a round trip each.
	scripts *batch.Batcher[scriptCall, scriptResult]

	// The in-flight marks this instance holds (key → value), renewed by renew.
	mu    sync.Mutex
	held  map[string]string
	stop  chan struct{}
	ended sync.WaitGroup
}

// scriptCall is one script to run in a pipeline, and scriptResult its answer.
type (
	scriptCall struct {
		script *redis.Script
		keys   []string
		args   []any
	}
	scriptResult struct {
		cmd *redis.Cmd
	}
)

const (
	// redisTimeout bounds a Redis read or write, and waitTimeout the wait for a
	// connection (to dial one, or for one to come free in a burst), so a Redis that hangs
	// costs a buyer at most their sum before the guard fails open.
	redisTimeout = 500 * time.Millisecond
	waitTimeout  = time.Second
	// retryRedis is how long the guard stays open after a Redis failure before asking
	// Redis again, so an outage does not add a timeout to every request.
	retryRedis = time.Second
	warnEvery  = 10 * time.Second
)

// NewGuard returns a Guard on the Redis of c.Redis; it connects in the background, and
// Redis being down is no error (the Guard fails open). Close it when done.
func NewGuard(c GuardConfig) (*Guard, error) {
	rdb, err := c.Redis.Client(redis.Options{
		DialTimeout:     waitTimeout,
		ReadTimeout:     redisTimeout,
		WriteTimeout:    redisTimeout,
		PoolTimeout:     waitTimeout,
		PoolSize:        64,
		MinIdleConns:    8,  // a burst finds connections ready rather than dialing
		MaxRetries:      -1, // no retries: fail open at once
		DialerRetries:   1,
		DisableIdentity: true,
	})
	if err != nil {
		return nil, err
	}
	g := &Guard{
		rdb:      rdb,
		prefix:   c.KeyPrefix,
		ipHeader: c.IPHeader,
		ttlMS:    c.InflightTTL.Milliseconds(),
		held:     map[string]string{},
		stop:     make(chan struct{}),
	}
	g.scripts = batch.New(2, 256, waitTimeout+redisTimeout, g.runScripts)
	g.userEvery, g.userBurst = interval(c.UserPerSec)
	g.ipEvery, g.ipBurst = interval(c.IPPerSec)
	if g.ttlMS <= 0 {
		g.ttlMS = 10_000
	}
	for _, s := range strings.Split(c.IPExempt, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			_ = g.Close()
			return nil, fmt.Errorf("rate_ip_exempt: %w", err)
		}
		g.exempt = append(g.exempt, p.Masked())
	}
	g.ended.Add(1)
	go g.renew()
	return g, nil
}

// renew extends the marks this instance holds, every third of their TTL, in one pipeline
// (only those still holding this instance's value), until the guard is closed.
func (g *Guard) renew() {
	defer g.ended.Done()
	t := time.NewTicker(time.Duration(g.ttlMS) * time.Millisecond / 3)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
		}
		g.mu.Lock()
		calls := make([]scriptCall, 0, len(g.held))
		for k, v := range g.held {
			calls = append(calls, scriptCall{renewScript, []string{k}, []any{v, g.ttlMS}})
		}
		g.mu.Unlock()
		if len(calls) == 0 {
			continue
		}
		// A round may take a third of the TTL: a slower Redis lets the marks lapse (they are
		// only a courtesy; the database refuses a second order) rather than fall behind.
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(g.ttlMS)*time.Millisecond/3)
		if _, err := g.runScripts(ctx, calls); err != nil {
			g.failOpen(err)
		}
		cancel()
	}
}

// interval returns the µs between two requests at perSec, and the burst (one second's
// worth); 0, 0 for no limit.
func interval(perSec int) (every, burst int64) {
	if perSec <= 0 {
		return 0, 0
	}
	return int64(math.Max(1, 1e6/float64(perSec))), int64(perSec)
}

// Ping checks that Redis answers (a readiness report: the guard fails open without it).
func (g *Guard) Ping(ctx context.Context) error { return g.rdb.Ping(ctx).Err() }

// QuietRedis drops go-redis's own log, which repeats every failed dial: a service that
// uses Redis reports Redis trouble itself (the guard at most every 10 s, readiness
// reports). go-redis has one logger per process.
func QuietRedis() { redis.SetLogger(quiet{}) }

type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

// Redis is the guard's Redis client, for other counts the instance keeps there.
func (g *Guard) Redis() *redis.Client { return g.rdb }

// Close stops the renewing and the pipelining and closes the Redis connections.
func (g *Guard) Close() error {
	select {
	case <-g.stop:
	default:
		close(g.stop)
	}
	g.ended.Wait()
	g.scripts.Close()
	return g.rdb.Close()
}

// runScripts runs calls in one pipeline. A script Redis does not have (after a restart) is
// sent whole once, and its digest used again from then on.
func (g *Guard) runScripts(ctx context.Context, calls []scriptCall) ([]scriptResult, error) {
	cmds := g.pipeline(ctx, calls, (*redis.Script).EvalSha)
	for _, cmd := range cmds {
		if redis.HasErrorPrefix(cmd.Err(), "NOSCRIPT") {
			cmds = g.pipeline(ctx, calls, (*redis.Script).Eval)
			break
		}
	}
	out := make([]scriptResult, len(calls))
	for i, cmd := range cmds {
		out[i].cmd = cmd
	}
	return out, nil
}

func (g *Guard) pipeline(ctx context.Context, calls []scriptCall,
	run func(*redis.Script, context.Context, redis.Scripter, []string, ...any) *redis.Cmd) []*redis.Cmd {
	pipe := g.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(calls))
	for i, c := range calls {
		cmds[i] = run(c.script, ctx, pipe, c.keys, c.args...)
	}
	_, _ = pipe.Exec(ctx) // each command carries its own error
	return cmds
}

// run runs one script through the pipeline of the moment and returns its command, done.
func (g *Guard) run(ctx context.Context, script *redis.Script, keys []string, args ...any) (*redis.Cmd, error) {
	res, err := g.scripts.Do(ctx, scriptCall{script: script, keys: keys, args: args})
	if err != nil {
		return nil, err
	}
	return res.cmd, nil
}

// admitScript checks both rate limits (GCRA: a key holds the theoretical arrival time, in
// µs of Redis's clock, of the next request) and, if both allow, charges them and sets the
// in-flight mark. One round trip for all three keys.
//
// KEYS: user rate, IP rate, in-flight mark. ARGV: user µs per request, user burst, IP µs
// per request, IP burst (a zero interval skips that limit), mark value, mark TTL in ms (0:
// no mark, the rate limits alone). Returns {0, 0} admitted, {1, ms to wait} rate limited,
// {2, 0, the mark's value} already in flight (read in the script: a mark that lapses
// after it ran cannot make a resend look like another press).
var admitScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tats = {}
local wait = 0
for i = 1, 2 do
  local every = tonumber(ARGV[2 * i - 1])
  if every > 0 then
    local tat = math.max(tonumber(redis.call('GET', KEYS[i]) or 0) or 0, now) + every
    local over = tat - now - every * tonumber(ARGV[2 * i])
    if over > wait then wait = over end
    tats[i] = tat
  end
end
if wait > 0 then return {1, math.ceil(wait / 1000)} end
for i, tat in pairs(tats) do
  redis.call('SET', KEYS[i], string.format('%d', tat), 'PX', string.format('%d', math.ceil((tat - now) / 1000)))
end
if ARGV[6] == '0' then return {0, 0} end
local held = redis.call('GET', KEYS[3])
if held then return {2, 0, held} end
redis.call('SET', KEYS[3], ARGV[5], 'PX', ARGV[6])
return {0, 0}
`)

// renewScript sets the TTL of the in-flight mark KEYS[1] to ARGV[2] ms if it is still
// ARGV[1]'s.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// releaseScript deletes the in-flight mark KEYS[1] if it is still ARGV[1]'s.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// Admit checks r, by user for item, against the rate limits and the in-flight marks. If
// it may go on, it returns ok and a release to call once the request is answered (it
// clears the mark). Otherwise it writes the refusal and returns false: 429 "slow down"
// with Retry-After, or, when the same user's request for the same item is still being
// served, 409 "already in progress" (another press) or 503 "busy, try again" (a resend of
// that very press, requestID: its answer is not known yet), both with Retry-After: 1. A nil
// Guard admits everything.
func (g *Guard) Admit(w http.ResponseWriter, r *http.Request, user string, item int64, requestID string) (release func(), ok bool) {
	noop := func() {}
	if g == nil {
		return noop, true
	}
	// The keys of a numeric user are those of before buyers were strings ("42"), so a
	// rolling upgrade keeps each one's budget and marks; item, last and all digits, keeps
	// the key of a user with ':' in it apart from any other.
	mark := g.prefix + "inflight:" + user + ":" + strconv.FormatInt(item, 10)
	value := requestID + "|" + randomHex()
	// The request's own cancellation must not look like Redis failing.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), waitTimeout+redisTimeout)
	defer cancel()
	switch found, wait, held := g.admit(ctx, r, user, mark, value, g.ttlMS); found {
	case failedOpen:
		return noop, true
	case limited:
		slowDown(w, r, wait)
		return nil, false
	case inFlight:
		w.Header().Set("Retry-After", "1")
		if strings.HasPrefix(held, requestID+"|") {
			Fail(w, r, outcome.Refuse(outcome.Reason_BUSY))
			return nil, false
		}
		Fail(w, r, outcome.Refuse(outcome.Reason_IN_PROGRESS))
		return nil, false
	}
	g.mu.Lock()
	g.held[mark] = value
	g.mu.Unlock()
	return func() {
		g.mu.Lock()
		if g.held[mark] == value { // not another press's, that took the mark after this one's lapsed
			delete(g.held, mark)
		}
		g.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout+redisTimeout)
		defer cancel()
		// On failure the mark lapses after its TTL.
		cmd, err := g.run(ctx, releaseScript, []string{mark}, value)
		if err == nil {
			err = cmd.Err()
		}
		if err != nil && !errors.Is(err, redis.Nil) {
			g.failOpen(err)
		}
	}, true
}

// Limit checks r, by user, against the rate limits alone (no in-flight mark), and charges
// them: true, or false once it has written 429 "slow down" with Retry-After. A nil Guard,
// or Redis down, admits everything.
func (g *Guard) Limit(w http.ResponseWriter, r *http.Request, user string) bool {
	if g == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), waitTimeout+redisTimeout)
	defer cancel()
	if found, wait, _ := g.admit(ctx, r, user, g.prefix+"inflight:-", "", 0); found == limited {
		slowDown(w, r, wait)
		return false
	}
	return true
}

// slowDown answers 429 "slow down", with Retry-After the wait in ms rounded up to seconds.
func slowDown(w http.ResponseWriter, r *http.Request, waitMS int64) {
	w.Header().Set("Retry-After", strconv.FormatInt(max(1, (waitMS+999)/1000), 10))
	Fail(w, r, outcome.Refuse(outcome.Reason_SLOW_DOWN))
}

// What admit found: the answers of admitScript, and Redis failing.
const (
	admitted   = 0
	limited    = 1
	inFlight   = 2
	failedOpen = -1
)

// admit runs admitScript for user's request r with the in-flight mark (value, for ttlMS;
// 0: none) and says what it found: for limited, the ms to wait; for inFlight, the mark's
// value.
func (g *Guard) admit(ctx context.Context, r *http.Request, user, mark, value string, ttlMS int64) (found, waitMS int64, held string) {
	if time.Now().UnixNano() < g.skipUntil.Load() {
		metrics.RedisFailOpen.Inc()
		return failedOpen, 0, ""
	}
	ipKey, ipEvery := g.prefix+"rate:ip:"+"-", int64(0)
	if ip, ok := g.clientIP(r); ok && !g.isExempt(ip) {
		ipKey, ipEvery = g.prefix+"rate:ip:"+ipBucket(ip), g.ipEvery
	}
	cmd, err := g.run(ctx, admitScript,
		[]string{g.prefix + "rate:user:" + user, ipKey, mark},
		g.userEvery, g.userBurst, ipEvery, g.ipBurst, value, ttlMS)
	var res []any
	if err == nil {
		res, err = cmd.Slice()
	}
	if err == nil && len(res) < 2 {
		err = fmt.Errorf("admit script returned %v", res)
	}
	if err == nil {
		var ok1, ok2 bool
		found, ok1 = res[0].(int64)
		waitMS, ok2 = res[1].(int64)
		if len(res) > 2 {
			held, _ = res[2].(string)
		}
		if !ok1 || !ok2 {
			err = fmt.Errorf("admit script returned %v", res)
		}
	}
	if err != nil {
		g.failOpen(err)
		metrics.RedisFailOpen.Inc()
		return failedOpen, 0, ""
	}
	return found, waitMS, held
}

// failOpen stops asking Redis for retryRedis and logs, at most every warnEvery.
func (g *Guard) failOpen(err error) {
	now := time.Now()
	g.skipUntil.Store(now.Add(retryRedis).UnixNano())
	last := g.warned.Load()
	if now.UnixNano()-last >= int64(warnEvery) && g.warned.CompareAndSwap(last, now.UnixNano()) {
		slog.Warn("redis unreachable: rate limits and duplicate-press checks are off (failing open)",
			"addr", g.rdb.Options().Addr, "err", err)
	}
}

// clientIP returns the client's address (see ClientIP).
func (g *Guard) clientIP(r *http.Request) (netip.Addr, bool) { return ClientIP(r, g.ipHeader) }

// ClientIP returns the client's address: from the trusted proxy's header ipHeader if set
// and present (the last address in it, the one that proxy added), else the connection's.
func ClientIP(r *http.Request, ipHeader string) (netip.Addr, bool) {
	if ipHeader != "" {
		if vals := r.Header.Values(ipHeader); len(vals) > 0 {
			parts := strings.Split(vals[len(vals)-1], ",")
			if ip, err := netip.ParseAddr(strings.TrimSpace(parts[len(parts)-1])); err == nil {
				return ip.Unmap(), true
			}
		}
	}
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap(), true
	}
	ip, err := netip.ParseAddr(r.RemoteAddr)
	return ip.Unmap(), err == nil
}

func (g *Guard) isExempt(ip netip.Addr) bool {
	for _, p := range g.exempt {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// ipBucket is the rate-limit bucket of ip: the address for IPv4, the /64 network for
// IPv6 (one host commonly holds a whole /64).
func ipBucket(ip netip.Addr) string {
	if ip.Is4() {
		return ip.String()
	}
	p, _ := ip.WithZone("").Prefix(64)
	return p.String()
}

// randomHex returns 128 random bits in hex.
func randomHex() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return hex.EncodeToString(b)
}
