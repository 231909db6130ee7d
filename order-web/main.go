// Command order-web serves the order HTTP API (go.micro.secbuy.web.order, :8088).
package main

import (
	"context"
	"log"

	"github.com/redis/go-redis/v9"

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

// quiet drops go-redis's own log, which repeats every failed dial; the guard reports
// Redis trouble itself, at most every 10 s.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

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
	redis.SetLogger(quiet{})
	guard, err := httpapi.NewGuard(httpapi.GuardConfig{
		RedisAddr: cfg.RedisAddr, KeyPrefix: cfg.RateKeyPrefix,
		UserPerSec: cfg.RateUserPerSec, IPPerSec: cfg.RateIPPerSec, IPExempt: cfg.RateIPExempt,
		IPHeader: cfg.ClientIPHeader, InflightTTL: cfg.InflightTTL.Duration,
	})
	if err != nil {
		return err
	}
	defer guard.Close()
	h := handler.New(orders, cfg.AuthSecret, cfg.MaxBodyBytes, httpapi.NewLimiter(cfg.MaxInflight, cfg.QueueWait.Duration),
		guard, cfg.RPCTimeout.Duration)
	defer h.Close()
	return svc.RunWeb(ctx, handler.Name, cfg.OrderWebAddr, reg, h.Routes(), cfg.HTTPReadTimeout.Duration, cfg.HTTPWriteTimeout.Duration)
}
