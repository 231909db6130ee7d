package handler

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// CacheTTL is how long a GET /stock/get answer is served from memory. A product page
// refreshed by a crowd is the hottest read of a sale; with the cache, stock-web asks
// stock-srv about one commodity at most once per CacheTTL however many buyers refresh.
// The price: the sale count a page shows may be up to CacheTTL (plus one RPC) old. Nothing
// decides with it: selling is decided by stock-srv alone.
const CacheTTL = 200 * time.Millisecond

// cacheMax bounds the number of cached ids, so a client walking through random ids cannot
// grow the memory without limit; past it, answers are served but not kept.
const cacheMax = 10000

// getCache keeps the rendered reply (status, body) of GET /stock/get per commodity id and
// coalesces concurrent misses for one id into a single GetCommodity RPC. Only final answers
// are kept: a commodity (200) and an unknown id (404). A failed RPC is not cached, so the
// next reader asks again. A second one, of StatsTTL, holds the shop's stats answer (see
// stats).
type getCache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[int64]cached
	flights singleflight.Group
}

// cached is one rendered reply.
type cached struct {
	status  int
	header  http.Header
	body    []byte
	expires time.Time
}

func newGetCache(ttl time.Duration) *getCache {
	return &getCache{ttl: ttl, now: time.Now, entries: make(map[int64]cached)}
}

// lookup returns the fresh entry for id, if any.
func (c *getCache) lookup(id int64) (cached, bool) {
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if !ok || !c.now().Before(e.expires) {
		return cached{}, false
	}
	return e, true
}

// store keeps e for id, first dropping expired entries if the cache is full.
func (c *getCache) store(id int64, e cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[id]; !ok && len(c.entries) >= cacheMax {
		now := c.now()
		for k, v := range c.entries {
			if !now.Before(v.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= cacheMax {
			return
		}
	}
	c.entries[id] = e
}

// forget drops keys, so that a commodity just created is not hidden by a cached 404.
func (c *getCache) forget(keys ...int64) {
	c.mu.Lock()
	for _, k := range keys {
		delete(c.entries, k)
	}
	c.mu.Unlock()
}

// get returns the reply for id: from the cache, or from fetch, which renders the reply the
// way the handler would and says whether it may be kept. Readers that arrive while a fetch
// for id is under way wait for it instead of starting their own. The fetch runs without
// the first reader's cancellation (the RPC client's timeout still bounds it), so one
// reader leaving does not fail the others; a reader whose own request ends stops waiting.
func (c *getCache) get(ctx context.Context, id int64, fetch func(context.Context) (cached, bool)) (cached, error) {
	if e, ok := c.lookup(id); ok {
		return e, nil
	}
	ch := c.flights.DoChan(strconv.FormatInt(id, 10), func() (any, error) {
		// A reader that missed just before the previous fetch stored its answer.
		if e, ok := c.lookup(id); ok {
			return e, nil
		}
		e, keep := fetch(context.WithoutCancel(ctx))
		if keep {
			e.expires = c.now().Add(c.ttl)
			c.store(id, e)
		}
		return e, nil
	})
	select {
	case r := <-ch:
		return r.Val.(cached), nil
	case <-ctx.Done():
		return cached{}, ctx.Err()
	}
}

// recorder captures a reply written by the httpapi helpers, so a cached reply is byte for
// byte what an uncached one would be.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}, status: http.StatusOK} }

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }
func (r *recorder) WriteHeader(status int)      { r.status = status }

// reply returns what r captured.
func (r *recorder) reply() cached {
	return cached{status: r.status, header: r.header, body: r.body.Bytes()}
}

// writeCached sends a cached reply. The stored header is only read, never changed.
func writeCached(w http.ResponseWriter, e cached) {
	h := w.Header()
	for k, v := range e.header {
		h[k] = v
	}
	h.Set("Content-Length", strconv.Itoa(len(e.body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(e.body)
}
