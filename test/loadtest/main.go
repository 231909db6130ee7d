// Command loadtest is the flash-sale load tester: it creates a commodity (or takes one),
// mints tokens for N distinct buyers, releases them all at once against order-web, prints
// what they were told and how fast, then waits for payments and checks every invariant in
// shared/DESIGN.md through the services' own APIs. It exits 1 if an invariant breaks.
//
// It reads the suite's secrets as the services do: SECBUY_DEV=1 for a `make up` suite.
//
//	SECBUY_DEV=1 go run ./test/loadtest                # the original test: 500 buyers, 10 units
//	SECBUY_DEV=1 go run ./test/loadtest -buyers 5000 -units 1000 -twice 100
//	SECBUY_DEV=1 go run ./test/loadtest -buyers 3000 -units 200 -report out.html
//
// On a terminal it shows a live line while the buyers press (sent, answered by outcome,
// rate and p99 so far); -report writes the burst's charts to one self-contained HTML page.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"secbuy/basic/config"
	"secbuy/basic/connect"
	"secbuy/test/load"
)

func main() {
	if err := run(); err != nil {
		log.Fatal(err)
	}
}

func run() error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	c := load.Config{
		StockURL:   "http://" + cfg.StockWebAddr,
		OrderURL:   "http://" + cfg.OrderWebAddr,
		PaymentURL: "http://" + cfg.PaymentWebAddr,
		AdminKey:   cfg.AdminKey,
		AuthSecret: cfg.AuthSecret,
		NATSURL:    cfg.NATSURL,
		Progress:   os.Stdout,
	}
	var report string
	flag.IntVar(&c.Buyers, "buyers", 500, "distinct buyers released at once")
	flag.Int64Var(&c.Units, "units", 10, "units of the commodity to create")
	flag.Int64Var(&c.Commodity, "commodity", 0, "sell this existing commodity instead of creating one")
	flag.IntVar(&c.Twice, "twice", 0, "how many buyers press buy twice at the same moment")
	flag.IntVar(&c.Conns, "conns", 0, "concurrent connections (0: every request at once)")
	flag.Int64Var(&c.UserBase, "user-base", time.Now().Unix()%100000*10000, "first user id - 1 (distinct per run by default)")
	flag.DurationVar(&c.Settle, "settle", 10*time.Second, "how long to wait for pending orders and payments")
	flag.StringVar(&c.StockURL, "stock", c.StockURL, "stock-web base URL")
	flag.StringVar(&c.OrderURL, "order", c.OrderURL, "order-web base URL")
	flag.StringVar(&c.PaymentURL, "payment", c.PaymentURL, "payment-web base URL")
	flag.StringVar(&c.NATSURL, "nats", c.NATSURL, "NATS registry address, for the services' Audit RPCs")
	flag.StringVar(&report, "report", "", "write the burst's report (figures and charts) to this HTML file")
	flag.Parse()
	if c.Buyers <= 0 || c.Units <= 0 && c.Commodity == 0 {
		return fmt.Errorf("-buyers and -units must be positive")
	}

	nats := connect.NATSOf(cfg) // the credentials and TLS of SECBUY_NATS_*, on -nats's servers
	nats.URL = c.NATSURL
	ctx := context.Background()
	client := load.Client(c.Conns)
	res, err := load.Burst(ctx, client, c)
	if err != nil {
		return err
	}
	fmt.Print(res.Summary())
	if report != "" {
		// Before the check, which replaces the answers it resends with their final ones.
		if err := writeReport(report, c, res); err != nil {
			return err
		}
		fmt.Println("  report:", report)
	}
	au, violations, err := load.Check(ctx, client, c, load.NewAuditorOn(nats), res)
	if err != nil {
		return err
	}
	fmt.Println("  audit:", au)
	if len(violations) > 0 {
		for _, v := range violations {
			fmt.Println("  INVARIANT BROKEN:", v)
		}
		os.Exit(1)
	}
	fmt.Println("  invariants: OK")
	return nil
}

// writeReport writes res's report to file.
func writeReport(file string, c load.Config, res load.Result) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	if err := load.WriteReport(f, c, res); err != nil {
		f.Close()
		return fmt.Errorf("write report %s: %w", file, err)
	}
	return f.Close()
}
