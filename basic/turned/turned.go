// Package turned counts the presses turned away, per commodity and second, over every
// order-web instance: each instance counts in memory and adds its counts to Redis four
// times a second, so a refused press costs a map increment and never a network call. The
// shop's page reads the last whole second's count (PerSecond).
package turned

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// flushEvery is how often an instance adds its counts to Redis; keep is how long a
// second's count stays there.
const (
	flushEvery = 250 * time.Millisecond
	keep       = 10 * time.Second
)

// second is one commodity's second.
type second struct{ sid, unix int64 }

// Counter is one instance's count of turned-away presses, not yet added to Redis.
type Counter struct {
	rdb    redis.UniversalClient
	prefix string
	now    func() time.Time

	mu     sync.Mutex
	counts map[second]int64
}

// NewCounter returns a counter that adds to keys starting with prefix in rdb; Run sends.
func NewCounter(rdb redis.UniversalClient, prefix string) *Counter {
	return &Counter{rdb: rdb, prefix: prefix, now: time.Now, counts: map[second]int64{}}
}

// Add counts one press for commodity sid turned away now.
func (c *Counter) Add(sid int64) {
	s := second{sid, c.now().Unix()}
	c.mu.Lock()
	c.counts[s]++
	c.mu.Unlock()
}

// Run adds the counts to Redis every flushEvery until ctx ends, then once more. Counts
// that Redis did not take are dropped: they are a view for people, not a record.
func (c *Counter) Run(ctx context.Context) {
	t := time.NewTicker(flushEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			c.flush(ctx)
		case <-ctx.Done():
			end, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
			c.flush(end)
			cancel()
			return
		}
	}
}

func (c *Counter) flush(ctx context.Context) {
	c.mu.Lock()
	counts := c.counts
	if len(counts) == 0 {
		c.mu.Unlock()
		return
	}
	c.counts = map[second]int64{}
	c.mu.Unlock()
	p := c.rdb.Pipeline()
	for s, n := range counts {
		k := key(c.prefix, s)
		p.IncrBy(ctx, k, n)
		p.Expire(ctx, k, keep)
	}
	_, _ = p.Exec(ctx)
}

// PerSecond returns, for each of sids, how many presses every instance turned away in the
// last whole second before now (0 for one nobody refused). A count reaches Redis within
// flushEvery of the press.
func PerSecond(ctx context.Context, rdb redis.UniversalClient, prefix string, sids []int64, now time.Time) (map[int64]int64, error) {
	out := make(map[int64]int64, len(sids))
	if len(sids) == 0 {
		return out, nil
	}
	last := now.Unix() - 1
	keys := make([]string, len(sids))
	for i, sid := range sids {
		keys[i] = key(prefix, second{sid, last})
	}
	vals, err := rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	for i, v := range vals {
		n, _ := strconv.ParseInt(toString(v), 10, 64)
		out[sids[i]] = n
	}
	return out, nil
}

func toString(v any) string {
	s, _ := v.(string)
	return s
}

func key(prefix string, s second) string {
	return prefix + "turned:" + strconv.FormatInt(s.sid, 10) + ":" + strconv.FormatInt(s.unix, 10)
}
