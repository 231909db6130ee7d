// Command stock-srv serves StockService (go.micro.secbuy.srv.stock): commodities and sales.
package main

import (
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
	service := svc.NewRPC(ctx, handler.Name, cfg.StockSrvAddr, reg, svc.Client(reg, cfg.RPCTimeout.Duration))
	if err := pb.RegisterStockServiceHandler(service.Server(), handler.New(repo.New(d))); err != nil {
		return err
	}
	return service.Run()
}
