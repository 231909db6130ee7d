// Command stock-srv serves StockService (go.micro.secbuy.srv.stock): commodities and sales.
package main

import (
	"context"
	"strconv"
	"time"

	"go-micro.dev/v6/server"

	"secbuy/basic/config"
	"secbuy/basic/db"
	"secbuy/basic/metrics"
	"secbuy/basic/svc"
	"secbuy/stock-srv/handler"
	"secbuy/stock-srv/migrations"
	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-srv/repo"
)

func main() { svc.Main("stock-srv", run) }

func run(ctx context.Context, cfg config.Config) error {
	d, err := db.Setup(ctx, cfg, "stock", migrations.FS)
	if err != nil {
		return err
	}
	defer d.Close()
	svc.Check("postgres", d.Ping)

	reg, err := svc.Registry(cfg)
	if err != nil {
		return err
	}
	srv, err := svc.NewServer(pb.Name, cfg.StockSrvAddr, reg, cfg)
	if err != nil {
		return err
	}
	store := repo.New(d)
	metrics.Register(unitsLeft(store))
	h := handler.New(store)
	h.DefaultBuckets = cfg.StockBuckets
	if err := srv.Handle(func(s server.Server) error { return pb.RegisterStockServiceHandler(s, h) }); err != nil {
		return err
	}
	var g svc.Group
	g.Serve("rpc", srv.Run)
	g.Drain(h.Close) // the Sell calls already batched, before the database closes
	return g.Run(ctx)
}

// unitsLeft is the probe of the units left of each commodity on sale now (of the 100 newest
// not ended), labelled with its id.
func unitsLeft(store *repo.Repo) *metrics.Probe {
	return metrics.NewProbe(func(ctx context.Context, emit func(int, float64, ...string)) error {
		cs, err := store.List(ctx, repo.ListQuery{Current: true, Newest: true, Limit: 100})
		if err != nil {
			return err
		}
		now := time.Now()
		for _, c := range cs {
			if c.StartTime == nil || !c.StartTime.After(now) {
				emit(0, float64(c.Left(now)), strconv.FormatInt(c.ID, 10))
			}
		}
		return nil
	}, metrics.Gauge{Name: "secbuy_stock_left", Help: "Units left to buy of each commodity on sale now (not counting those given back less than a second ago).", Labels: []string{"commodity"}})
}
