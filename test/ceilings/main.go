// Command ceilings measures, on this machine, the ceilings of the servers secbuy stands on,
// for docs/SCALING.md: JetStream publishes per second (acknowledged, file storage, with a
// msg id as the outbox relay sends them), and the hot-row grant rate of Postgres with K rows
// sharing a commodity's count (the stock buckets design), each grant a SellBatch-shaped
// transaction: insert the batch's sale records, raise one row. scripts/ceilings.sh runs it
// beside pgbench and redis-benchmark.
//
//	go run ./test/ceilings -nats nats://127.0.0.1:4222 -pg postgres://postgres@127.0.0.1:5432/postgres
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func main() {
	natsURL := flag.String("nats", "nats://127.0.0.1:4222", "NATS with JetStream")
	pgURL := flag.String("pg", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "a Postgres database to make scratch tables in")
	d := flag.Duration("duration", 5*time.Second, "length of each measurement")
	flag.Parse()
	ctx := context.Background()
	if err := jetStream(ctx, *natsURL, *d); err != nil {
		log.Fatal(err)
	}
	if err := hotRows(ctx, *pgURL, *d); err != nil {
		log.Fatal(err)
	}
}

// jetStream publishes 256-byte events asynchronously, 256 in flight, each with its own
// msg id, to a file-stored stream of its own, for d, and prints the acknowledged rate.
func jetStream(ctx context.Context, url string, d time.Duration) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		return err
	}
	name := "CEILINGS_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".x"},
		Storage: jetstream.FileStorage, Duplicates: time.Minute}); err != nil {
		return err
	}
	defer func() { _ = js.DeleteStream(context.Background(), name) }()
	payload := make([]byte, 256)
	var n int
	start := time.Now()
	for time.Since(start) < d {
		if _, err := js.PublishAsync(name+".x", payload, jetstream.WithMsgID(name+strconv.Itoa(n))); err != nil {
			return err
		}
		n++
	}
	<-js.PublishAsyncComplete()
	el := time.Since(start)
	fmt.Printf("jetstream: %d acknowledged publishes in %v: %.0f msgs/s (file storage, one server, msg ids)\n",
		n, el.Round(time.Millisecond), float64(n)/el.Seconds())
	return nil
}

// hotRows measures grants/s of one commodity whose count is split over K rows, K = 1, 2,
// 4, 8: 16 clients each run transactions of a batch of grants (1, then 64): insert the
// batch's sale records, then raise one row chosen at random by the batch (the shape of
// SellBatch on a hot commodity).
func hotRows(ctx context.Context, url string, d time.Duration) error {
	pool, err := pgxpool.New(ctx, url)
	if err != nil {
		return err
	}
	defer pool.Close()
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	rows, sales := "ceil_rows_"+suffix, "ceil_sales_"+suffix
	if _, err := pool.Exec(ctx, `CREATE TABLE `+rows+` (n int PRIMARY KEY, sale bigint NOT NULL);
		CREATE TABLE `+sales+` (request_id text PRIMARY KEY, n int NOT NULL)`); err != nil {
		return err
	}
	defer func() { _, _ = pool.Exec(context.Background(), `DROP TABLE `+rows+`, `+sales) }()
	const clients = 16
	for _, batch := range []int{1, 64} {
		if err := hotRowsAt(ctx, pool, rows, sales, clients, batch, d); err != nil {
			return err
		}
	}
	return nil
}

// hotRowsAt is hotRows for one batch size.
func hotRowsAt(ctx context.Context, pool *pgxpool.Pool, rows, sales string, clients, batch int, d time.Duration) error {
	var one float64
	for _, k := range []int{1, 2, 4, 8} {
		if _, err := pool.Exec(ctx, `TRUNCATE `+rows+`, `+sales+`;
			INSERT INTO `+rows+` SELECT g, 0 FROM generate_series(0, `+strconv.Itoa(k-1)+`) g`); err != nil {
			return err
		}
		var txs atomic.Int64
		var seq atomic.Int64
		var wg sync.WaitGroup
		var first error
		var mu sync.Mutex
		stop := time.Now().Add(d)
		for range clients {
			wg.Go(func() {
				ids := make([]string, batch)
				for time.Now().Before(stop) {
					for i := range ids {
						ids[i] = strconv.FormatInt(seq.Add(1), 36)
					}
					n := rand.IntN(k)
					tx, err := pool.Begin(ctx)
					if err == nil {
						_, err = tx.Exec(ctx, `INSERT INTO `+sales+` SELECT r, $2 FROM unnest($1::text[]) r`, ids, n)
					}
					if err == nil {
						_, err = tx.Exec(ctx, `UPDATE `+rows+` SET sale = sale + $1 WHERE n = $2`, batch, n)
					}
					if err == nil {
						err = tx.Commit(ctx)
					}
					if err != nil {
						mu.Lock()
						first = err
						mu.Unlock()
						return
					}
					txs.Add(1)
				}
			})
		}
		wg.Wait()
		if first != nil {
			return first
		}
		rate := float64(txs.Load()*int64(batch)) / d.Seconds()
		if k == 1 {
			one = rate
		}
		fmt.Printf("hot rows: batches of %d, K=%d: %.0f grants/s (%.0f transactions/s), %.2fx K=1\n", batch, k, rate, float64(txs.Load())/d.Seconds(), rate/one)
	}
	return nil
}
