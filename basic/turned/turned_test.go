package turned

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestCountsReachRedis counts presses of several instances, concurrently, in two seconds,
// and reads each second back from the real Redis.
func TestCountsReachRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Ping(ctx).Err(); err != nil {
		t.Fatalf("this test needs Redis on 127.0.0.1:6379: %v", err)
	}
	prefix := "secbuy-test:" + time.Now().Format("150405.000000") + ":"
	at := time.Unix(1_800_000_000, 0)
	var counters []*Counter
	for range 3 {
		c := NewCounter(rdb, prefix)
		c.now = func() time.Time { return at }
		counters = append(counters, c)
	}
	var wg sync.WaitGroup
	for _, c := range counters {
		wg.Go(func() {
			for range 100 {
				c.Add(7)
			}
			c.Add(8)
		})
	}
	wg.Wait()
	for _, c := range counters {
		c.flush(ctx)
		c.now = func() time.Time { return at.Add(time.Second) }
		c.Add(7)
		c.flush(ctx)
	}
	got, err := PerSecond(ctx, rdb, prefix, []int64{7, 8, 9}, at.Add(time.Second+500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if got[7] != 300 || got[8] != 3 || got[9] != 0 {
		t.Errorf("the first second: %v; want 7:300 8:3 9:0", got)
	}
	got, err = PerSecond(ctx, rdb, prefix, []int64{7}, at.Add(2*time.Second))
	if err != nil || got[7] != 3 {
		t.Errorf("the second second: %v %v; want 7:3", got, err)
	}
	if ttl := rdb.TTL(ctx, key(prefix, second{7, at.Unix()})).Val(); ttl <= 0 || ttl > keep {
		t.Errorf("a second's count lives %v; want at most %v", ttl, keep)
	}
}

// TestRunFlushesAtTheEnd: what an instance counted goes to Redis when it stops.
func TestRunFlushesAtTheEnd(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
	defer rdb.Close()
	prefix := "secbuy-test:" + time.Now().Format("150405.000000") + ":end:"
	c := NewCounter(rdb, prefix)
	at := time.Now()
	c.now = func() time.Time { return at }
	c.Add(1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	c.Run(ctx)
	got, err := PerSecond(context.Background(), rdb, prefix, []int64{1}, at.Add(time.Second))
	if err != nil || got[1] != 1 {
		t.Errorf("after Run stopped: %v %v; want 1:1", got, err)
	}
}
