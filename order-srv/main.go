// Command order-srv serves OrderService (go.micro.secbuy.srv.order): orders, their recovery,
// the relay of payment events to JetStream, and the consumer of payment.expired that
// cancels an unpaid order and gives its unit back.
package main

import (
	"context"

	"go-micro.dev/v6/server"

	"secbuy/basic/config"
	"secbuy/basic/db"
	"secbuy/basic/events"
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

func run(ctx context.Context, cfg config.Config) error {
	d, err := db.Setup(ctx, cfg, "order", migrations.FS)
	if err != nil {
		return err
	}
	defer d.Close()
	nc, js, stream, err := events.Connect(ctx, cfg.NATSURL, "order-srv")
	if err != nil {
		return err
	}
	defer nc.Close()

	store := repo.New(d)
	reg := svc.Registry(cfg.NATSURL)
	stock := stockpb.NewStockService(svc.Internal(stockpb.Name), svc.Client(reg, cfg.RPCTimeout.Duration))
	relay := outbox.NewRelay(store, js, eventpb.PayTopic)
	h := handler.New(store, stock, relay.Poke, cfg.RPCTimeout.Duration)
	srv, err := svc.NewServer(pb.Name, cfg.OrderSrvAddr, reg)
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
		h.RunRecovery(ctx, cfg.RecoverEvery.Duration, cfg.RecoverAfter.Duration)
	})
	g.Work("payment.expired consumer", func(ctx context.Context) error { return cancels.Run(ctx, stream) })
	return g.Run(ctx)
}
