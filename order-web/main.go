// Command order-web serves the order HTTP API (go.micro.secbuy.web.order, :8088).
package main

import (
	"context"

	"secbuy/basic/auth"
	"secbuy/basic/config"
	"secbuy/basic/connect"
	"secbuy/basic/httpapi"
	"secbuy/basic/svc"
	"secbuy/basic/ticket"
	"secbuy/basic/turned"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-web/handler"
	stockpb "secbuy/stock-srv/proto/stock"
)

func main() { svc.Main("order-web", run) }

func run(ctx context.Context, cfg config.Config) error {
	httpapi.QuietRedis()
	guard, err := httpapi.NewGuard(httpapi.GuardConfig{
		Redis: connect.RedisOf(cfg), KeyPrefix: cfg.RateKeyPrefix,
		UserPerSec: cfg.RateUserPerSec, IPPerSec: cfg.RateIPPerSec, IPExempt: cfg.RateIPExempt,
		IPHeader: cfg.ClientIPHeader, InflightTTL: cfg.InflightTTL.Duration,
	})
	if err != nil {
		return err
	}
	defer guard.Close()
	// Redis being down is ridden out (the guard fails open); refused credentials are not.
	if err := connect.CheckRedis(ctx, guard.Redis()); err != nil {
		return err
	}
	svc.Report("redis", guard.Ping)
	reg, err := svc.Registry(cfg)
	if err != nil {
		return err
	}
	orders := pb.NewOrderService(svc.Internal(pb.Name), svc.Client(reg, cfg.RPCTimeout.Duration, cfg.RegisterTTL.Duration))
	verifier, err := auth.FromConfig(cfg)
	if err != nil {
		return err
	}
	h := handler.New(orders, verifier, cfg.MaxBodyBytes,
		httpapi.NewLimiter(cfg.MaxInflight, cfg.QueueWait.Duration), guard, cfg.RPCTimeout.Duration)
	counted := turned.NewCounter(guard.Redis(), cfg.RateKeyPrefix)
	h.CountTurned(counted)
	stock := stockpb.NewStockService(svc.Internal(stockpb.Name), svc.Client(reg, cfg.RPCTimeout.Duration, cfg.RegisterTTL.Duration))
	tickets, err := ticket.New(cfg.AuthSecret, cfg.TicketTTL.Duration, cfg.TicketPowBits)
	if err != nil {
		return err
	}
	h.Tickets(stock, tickets, cfg.RPCTimeout.Duration)
	pages := handler.NewPages(stock, handler.PageConfig{
		AuthSecret: cfg.AuthSecret, DevLogin: cfg.DevLogin, PaymentURL: cfg.PagePaymentURL,
		MaxBody: cfg.MaxBodyBytes, RPCTimeout: cfg.RPCTimeout.Duration,
	})

	var g svc.Group
	g.Serve("http", svc.Web(handler.Name, cfg.OrderWebAddr, reg, h.Routes(pages.Endpoints()...), cfg))
	// A server part: the page streams end as soon as the instance stops, not after its
	// drain, which they would hold for their whole life. A page reconnects, elsewhere.
	g.Serve("page stream", func(ctx context.Context) error { pages.Run(ctx); return nil })
	g.Loop("turned-away counts", counted.Run)
	g.Drain(h.Close) // the buys already batched are sent to order-srv
	return g.Run(ctx)
}
