// Command stock-srv serves StockService (go.micro.secbuy.srv.stock): commodities and sales.
package main

import (
	"go-micro.dev/v6/server"
	"log"

	"secbuy/basic/config"
	"secbuy/basic/db"
	"secbuy/basic/svc"
	"secbuy/stock-srv/handler"
	"secbuy/stock-srv/migrations"
	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-srv/repo"
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
	svc.SetupLog("stock-srv", cfg.LogLevel)
	defer svc.Profile("stock-srv")()
	ctx, stop := svc.SignalContext()
	defer stop()

	d, err := db.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns, cfg.DBTimeout.Duration)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := db.Migrate(ctx, d, "stock", migrations.FS); err != nil {
		return err
	}

	reg := svc.Registry(cfg.NATSURL)
	srv, err := svc.NewServer(handler.Name, cfg.StockSrvAddr, reg)
	if err != nil {
		return err
	}
	h := handler.New(repo.New(d))
	defer h.Close() // after the server has drained its calls, before the database closes
	if err := srv.Handle(func(s server.Server) error { return pb.RegisterStockServiceHandler(s, h) }); err != nil {
		return err
	}
	return srv.Run(ctx)
}
