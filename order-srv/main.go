// Command order-srv serves OrderService (go.micro.secbuy.srv.order): orders, their recovery,
// the relay of payment events to JetStream, and the consumer of payment.expired that
// cancels an unpaid order and gives its unit back.
package main

import (
	"context"

	"go-micro.dev/v6/server"

	"secbuy/basic/config"
	"secbuy/basic/connect"
	"secbuy/basic/db"
	"secbuy/basic/events"
	"secbuy/basic/metrics"
	"secbuy/basic/outbox"
	"secbuy/basic/svc"
	"secbuy/order-srv/expired"
	"secbuy/order-srv/handler"
	"secbuy/order-srv/migrations"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-srv/repo"
	eventpb "secbuy/proto/events"
	stockpb "secbuy/stock-srv/proto/stock"
)

func main() { svc.Main("order-srv", run) }

// recoveryLock is the advisory lock key of recovery (the outbox relays use 0x5ecb0de7 and
// 0x5ecb0de8).
const recoveryLock = 0x5ecb0de9

func run(ctx context.Context, cfg config.Config) error {
	d, err := db.Setup(ctx, cfg, "order", migrations.FS)
	if err != nil {
		return err
	}
	defer d.Close()
	svc.Check("postgres", d.Ping)
	nc, js, stream, err := events.Connect(ctx, connect.NATSOf(cfg), cfg.NATSReplicas, "order-srv")
	if err != nil {
		return err
	}
	defer nc.Close()

	store := repo.New(d)
	metrics.Register(metrics.Figure("secbuy_orders_pending", "Orders pending: their unit not yet granted or refused, or that answer not yet recorded.", store.CountPending))
	reg, err := svc.Registry(cfg)
	if err != nil {
		return err
	}
	stock := stockpb.NewStockService(svc.Internal(stockpb.Name), svc.Client(reg, cfg.RPCTimeout.Duration, cfg.RegisterTTL.Duration))
	relay := outbox.NewRelay(store, js, eventpb.PayTopic)
	h := handler.New(store, stock, relay.Poke, cfg.RPCTimeout.Duration)
	srv, err := svc.NewServer(pb.Name, cfg.OrderSrvAddr, reg, cfg)
	if err != nil {
		return err
	}
	if err := srv.Handle(func(s server.Server) error { return pb.RegisterOrderServiceHandler(s, h) }); err != nil {
		return err
	}
	cancels := expired.New(store, stock, cfg.RPCTimeout.Duration)

	var g svc.Group
	g.Serve("rpc", srv.Run)
	g.Drain(h.Close) // the buys already batched write their orders and events
	g.Last("payment.payevent relay", relay.Run)
	g.Loop("recovery", func(ctx context.Context) {
		h.RunRecovery(ctx, cfg.RecoverEvery.Duration, cfg.RecoverAfter.Duration,
			func(ctx context.Context, f func(context.Context) error) (bool, error) {
				return d.Exclusive(ctx, recoveryLock, f)
			})
	})
	g.Work("payment.expired consumer", func(ctx context.Context) error { return cancels.Run(ctx, stream) })
	g.Loop("outbox purge", func(ctx context.Context) { outbox.RunPurge(ctx, store, cfg.OutboxRetention.Duration) })
	return g.Run(ctx)
}
