package repo_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"secbuy/basic/db"
	"secbuy/stock-srv/repo"
)

func createBuckets(t *testing.T, r *repo.Repo, count int64, k int) repo.Commodity {
	t.Helper()
	c, err := r.Create(context.Background(), repo.Commodity{Name: "hot", Count: count, Buckets: k})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// buckets returns each bucket's count and sale, in bucket order.
func buckets(t *testing.T, d *db.DB, sid int64) (counts, sales []int64) {
	t.Helper()
	var rows []struct{ Count, Sale int64 }
	if err := d.Raw(`SELECT count, sale FROM stock_bucket WHERE sid = ? ORDER BY n`, sid).Scan(&rows).Error; err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		counts, sales = append(counts, r.Count), append(sales, r.Sale)
	}
	return counts, sales
}

// A commodity of K buckets splits its count over K rows as evenly as it can (never more
// buckets than units), and reads as one commodity.
func TestBucketsCreate(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	c := createBuckets(t, r, 10, 4)
	if c.Buckets != 4 || c.Count != 10 || c.Sale != 0 || c.Left(time.Now()) != 10 {
		t.Errorf("created %+v", c)
	}
	if counts, _ := buckets(t, d, c.ID); fmt.Sprint(counts) != "[3 3 2 2]" {
		t.Errorf("bucket counts %v; want [3 3 2 2]", counts)
	}
	if small := createBuckets(t, r, 2, 8); small.Buckets != 2 {
		t.Errorf("2 units in 8 buckets: %d buckets; want 2", small.Buckets)
	}
	if one := create(t, r, 5); one.Buckets != 1 {
		t.Errorf("default: %d buckets", one.Buckets)
	}
	// A binary from before buckets would sell from the stock row: the database refuses.
	if err := d.Exec(`UPDATE stock SET sale = sale + 1 WHERE id = ?`, c.ID).Error; err == nil {
		t.Error("a sale from a bucketed commodity's stock row was accepted")
	}
}

// Concurrent batches asking for exactly the commodity's count, spread over its buckets:
// every one is granted (none is told "sold out" while some bucket still has a unit), and
// the next ask is refused. Then releases go back to their own buckets and sell again.
func TestBucketsExactUnderConcurrency(t *testing.T) {
	t.Parallel()
	r, d := newRepoDB(t)
	const units, workers = 503, 16
	c := createBuckets(t, r, units, 8)
	all := rids(1, units)
	var (
		mu      sync.Mutex
		refused []string
		wg      sync.WaitGroup
		next    = make(chan []string)
	)
	for range workers {
		wg.Go(func() {
			for chunk := range next {
				res, err := r.SellBatch(context.Background(), batchOf(c.ID, chunk...))
				if err != nil {
					mu.Lock()
					refused = append(refused, "error: "+err.Error())
					mu.Unlock()
					continue
				}
				for i, x := range res {
					if x.Err != nil {
						mu.Lock()
						refused = append(refused, chunk[i]+": "+x.Err.Error())
						mu.Unlock()
					}
				}
			}
		})
	}
	rng := rand.New(rand.NewSource(1))
	for rest := all; len(rest) > 0; {
		n := min(len(rest), 1+rng.Intn(40))
		next <- rest[:n]
		rest = rest[n:]
	}
	close(next)
	wg.Wait()
	if len(refused) > 0 {
		t.Fatalf("%d of %d asks for exactly the count were not granted, e.g. %s", len(refused), units, refused[0])
	}
	counts, sales := buckets(t, d, c.ID)
	for i := range counts {
		if sales[i] != counts[i] {
			t.Errorf("bucket %d: sold %d of %d", i, sales[i], counts[i])
		}
	}
	checkAudit(t, r, c.ID, units)
	if res := sellBatch(t, r, batchOf(c.ID, rids(1000, 3)...)); !errors.Is(res[0].Err, repo.ErrSoldOut) {
		t.Fatalf("after the count: %v; want sold out", res[0].Err)
	}
	if out, _, err := r.SoldOut(context.Background(), c.ID); err != nil || !out {
		t.Errorf("SoldOut = %v, %v; want sold out", out, err)
	}

	// Give back three units: each to the bucket it came from, held for the return delay,
	// then on sale again.
	var bs []int
	if err := d.Raw(`SELECT bucket FROM stock_sale WHERE request_id IN ? ORDER BY request_id`, all[:3]).Scan(&bs).Error; err != nil {
		t.Fatal(err)
	}
	res, err := r.ReleaseBatch(context.Background(), all[:3])
	if err != nil || res[0].Err != nil || !res[0].Released {
		t.Fatalf("release: %v %+v", err, res)
	}
	_, after := buckets(t, d, c.ID)
	back := 0
	for i := range after {
		back += int(counts[i] - after[i])
	}
	for _, b := range bs {
		if after[b] == counts[b] {
			t.Errorf("bucket %d of a released sale did not get its unit back", b)
		}
	}
	if back != 3 {
		t.Errorf("%d units back; want 3", back)
	}
	if out, validFor, err := r.SoldOut(context.Background(), c.ID); err != nil || !out || validFor <= 0 {
		t.Errorf("while the returned units are held: SoldOut = %v, %v, %v; want sold out for a while", out, validFor, err)
	}
	time.Sleep(250 * time.Millisecond) // the test repo's return delay is 200 ms
	got := sellBatch(t, r, batchOf(c.ID, rids(2000, 4)...))
	granted := 0
	for _, x := range got {
		if x.Err == nil {
			granted++
		}
	}
	if granted != 3 {
		t.Errorf("after the hold: %d of 4 granted; want the 3 returned units", granted)
	}
	checkAudit(t, r, c.ID, units)
}
