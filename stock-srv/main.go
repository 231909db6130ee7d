// Command stock-srv serves StockService (go.micro.secbuy.srv.stock): commodities and sales.
package main

import (
	"context"

	"go-micro.dev/v6/server"

	"secbuy/basic/config"
	"secbuy/basic/db"
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

	srv, err := svc.NewServer(pb.Name, cfg.StockSrvAddr, svc.Registry(cfg.NATSURL), cfg)
	if err != nil {
		return err
	}
	h := handler.New(repo.New(d))
	h.DefaultBuckets = cfg.StockBuckets
	if err := srv.Handle(func(s server.Server) error { return pb.RegisterStockServiceHandler(s, h) }); err != nil {
		return err
	}
	var g svc.Group
	g.Serve("rpc", srv.Run)
	g.Drain(h.Close) // the Sell calls already batched, before the database closes
	return g.Run(ctx)
}
