package httpapi

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"

	"secbuy/proto/outcome"
)

// Lockout limits the failed attempts at a secret per client IP (the bucket the buy
// limiter uses: the address, or an IPv6 /64): after Max failures within Window of the
// first, that client's attempts are refused, right or wrong, until the window ends, and
// other clients are not affected. It is in memory, per instance: each instance of a
// service allows Max failures per client, and it remembers the Clients most recently
// seen (the oldest is forgotten first), so a crowd of addresses cannot grow it.
type Lockout struct {
	max      int
	window   time.Duration
	ipHeader string
	now      func() time.Time

	mu      sync.Mutex
	clients *simplelru.LRU[string, *lockEntry]
}

// lockEntry is one client's failures in the window that began at start.
type lockEntry struct {
	start    time.Time
	failures int
}

// NewLockout returns a Lockout of limit failures per window for each of at most clients
// clients, with the client IP taken as ClientIP does with ipHeader.
func NewLockout(limit int, window time.Duration, clients int, ipHeader string) *Lockout {
	lru, err := simplelru.NewLRU[string, *lockEntry](clients, nil)
	if err != nil {
		panic(err) // clients < 1: a programming error
	}
	return &Lockout{max: limit, window: window, ipHeader: ipHeader, now: time.Now, clients: lru}
}

// Try runs check for r's client unless it is locked out, counting a false answer as a
// failure. It returns check's answer, or, for a locked-out client, false and how long
// until it may try again (0 otherwise). check runs under the Lockout's lock, so that
// concurrent attempts are counted exactly: it must be quick (a comparison).
func (l *Lockout) Try(r *http.Request, check func() bool) (ok bool, retryAfter time.Duration) {
	bucket := ""
	if ip, known := ClientIP(r, l.ipHeader); known {
		bucket = ipBucket(ip)
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e, seen := l.clients.Get(bucket)
	if !seen || now.Sub(e.start) >= l.window {
		e = nil
	}
	if e != nil && e.failures >= l.max {
		return false, e.start.Add(l.window).Sub(now)
	}
	if check() {
		return true, 0
	}
	if e == nil {
		e = &lockEntry{start: now}
		l.clients.Add(bucket, e)
	}
	e.failures++
	return false, 0
}

// RefuseLocked writes the answer to a locked-out client: 429 "slow down" with Retry-After
// in whole seconds (at least 1).
func RefuseLocked(w http.ResponseWriter, r *http.Request, retryAfter time.Duration) {
	w.Header().Set("Retry-After", strconv.FormatInt(max(1, int64((retryAfter+time.Second-1)/time.Second)), 10))
	Fail(w, r, outcome.Refuse(outcome.Reason_SLOW_DOWN))
}
