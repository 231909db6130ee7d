// Command stock-web serves the stock HTTP API (go.micro.secbuy.web.stock, :8087).
package main

import (
	"log"

	"secbuy/basic/config"
	"secbuy/basic/svc"
	stocksrv "secbuy/stock-srv/handler"
	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-web/handler"
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
	svc.SetupLog("stock-web", cfg.LogLevel)
	defer svc.Profile("stock-web")()
	ctx, stop := svc.SignalContext()
	defer stop()

	reg := svc.Registry(cfg.NATSURL)
	stock := pb.NewStockService(svc.Internal(stocksrv.Name), svc.Client(reg, cfg.RPCTimeout.Duration))
	h := handler.New(stock, cfg.AdminKey, cfg.MaxBodyBytes)
	return svc.RunWeb(ctx, handler.Name, cfg.StockWebAddr, reg, h.Routes(), cfg.HTTPReadTimeout.Duration, cfg.HTTPWriteTimeout.Duration)
}
