// Command stock-web serves the stock HTTP API and the shop's page (go.micro.secbuy.web.stock, :8087).
package main

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"

	"secbuy/basic/config"
	"secbuy/basic/connect"
	"secbuy/basic/httpapi"
	"secbuy/basic/svc"
	orderpb "secbuy/order-srv/proto/order"
	paymentpb "secbuy/payment-srv/proto/payment"
	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-web/handler"
)

func main() { svc.Main("stock-web", run) }

func run(ctx context.Context, cfg config.Config) error {
	httpapi.QuietRedis()
	// Redis holds the presses order-web turned away, which the shop's page shows; the
	// page works without them, so Redis is reported, not required.
	rdb, err := connect.RedisOf(cfg).Client(redis.Options{
		DialTimeout:     time.Second,
		ReadTimeout:     500 * time.Millisecond,
		WriteTimeout:    500 * time.Millisecond,
		PoolTimeout:     time.Second,
		MaxRetries:      -1,
		DisableIdentity: true,
	})
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := connect.CheckRedis(ctx, rdb); err != nil {
		return err
	}
	svc.Report("redis", func(ctx context.Context) error { return rdb.Ping(ctx).Err() })

	reg, err := svc.Registry(cfg)
	if err != nil {
		return err
	}
	rpc := svc.Client(reg, cfg.RPCTimeout.Duration, cfg.RegisterTTL.Duration)
	stock := pb.NewStockService(svc.Internal(pb.Name), rpc)
	h := handler.NewAdmin(stock, cfg.AdminKey, cfg.MaxBodyBytes, handler.Admin{
		Orders:       orderpb.NewOrderService(svc.Internal(orderpb.Name), rpc),
		Payments:     paymentpb.NewPaymentService(svc.Internal(paymentpb.Name), rpc),
		Redis:        rdb,
		TurnedPrefix: cfg.RateKeyPrefix,
		// Wrong admin keys are counted per client IP, as the buy limiter counts buys.
		ClientIPHeader: cfg.ClientIPHeader,
	})
	var g svc.Group
	g.Serve("http", svc.Web(handler.Name, cfg.StockWebAddr, reg, h.Routes(), cfg))
	return g.Run(ctx)
}
