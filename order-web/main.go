// Command order-web serves the order HTTP API (go.micro.secbuy.web.order, :8088).
package main

import (
	"log"

	"secbuy/basic/config"
	"secbuy/basic/httpapi"
	"secbuy/basic/svc"
	ordersrv "secbuy/order-srv/handler"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-web/handler"
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
	svc.SetupLog("order-web", cfg.LogLevel)
	defer svc.Profile("order-web")()
	ctx, stop := svc.SignalContext()
	defer stop()

	reg := svc.Registry(cfg.NATSURL)
	orders := pb.NewOrderService(svc.Internal(ordersrv.Name), svc.Client(reg, cfg.RPCTimeout.Duration))
	h := handler.New(orders, cfg.AuthSecret, cfg.MaxBodyBytes, httpapi.NewLimiter(cfg.MaxInflight, cfg.QueueWait.Duration), cfg.RPCTimeout.Duration)
	defer h.Close()
	return svc.RunWeb(ctx, handler.Name, cfg.OrderWebAddr, reg, h.Routes())
}
