// Command payment-srv serves PaymentService (go.micro.secbuy.srv.payment), turns the
// payment.payevent stream into one unpaid payment per order, expires payments left unpaid
// longer than pay_timeout, and relays their payment.expired events to JetStream.
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
	"secbuy/payment-srv/consumer"
	"secbuy/payment-srv/expiry"
	"secbuy/payment-srv/handler"
	"secbuy/payment-srv/migrations"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-srv/repo"
	eventpb "secbuy/proto/events"
)

func main() { svc.Main("payment-srv", run) }

func run(ctx context.Context, cfg config.Config) error {
	nc, js, stream, err := events.Connect(ctx, connect.NATSOf(cfg), cfg.NATSReplicas, "payment-srv")
	if err != nil {
		return err
	}
	defer nc.Close()
	d, err := db.Setup(ctx, cfg, "payment", migrations.FS)
	if err != nil {
		return err
	}
	defer d.Close()
	svc.Check("postgres", d.Ping)

	store := repo.New(d)
	metrics.Register(metrics.Figure("secbuy_payments_pending", "Payments waiting to be paid (neither paid nor expired).", store.CountUnpaid))
	reg, err := svc.Registry(cfg)
	if err != nil {
		return err
	}
	srv, err := svc.NewServer(pb.Name, cfg.PaymentSrvAddr, reg, cfg)
	if err != nil {
		return err
	}
	if err := srv.Handle(func(s server.Server) error { return pb.RegisterPaymentServiceHandler(s, handler.New(store)) }); err != nil {
		return err
	}
	relay := outbox.NewRelay(store, js, eventpb.ExpiredTopic)
	payments := consumer.New(store)

	var g svc.Group
	g.Serve("rpc", srv.Run)
	g.Work("payment.payevent consumer", func(ctx context.Context) error { return payments.Run(ctx, stream) })
	g.Loop("expiry", func(ctx context.Context) {
		expiry.Run(ctx, store, cfg.ExpireEvery.Duration, cfg.PayTimeout.Duration, relay.Poke)
	})
	g.Last("payment.expired relay", relay.Run)
	g.Loop("outbox purge", func(ctx context.Context) { outbox.RunPurge(ctx, store, cfg.OutboxRetention.Duration) })
	return g.Run(ctx)
}
