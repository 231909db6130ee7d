// Command payment-srv serves PaymentService (go.micro.secbuy.srv.payment) and turns the
// payment.payevent stream into one unpaid payment per order.
package main

import (
	"context"
	"go-micro.dev/v6/server"
	"log"

	"secbuy/basic/config"
	"secbuy/basic/db"
	"secbuy/basic/events"
	"secbuy/basic/svc"
	"secbuy/payment-srv/consumer"
	"secbuy/payment-srv/handler"
	"secbuy/payment-srv/migrations"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-srv/repo"
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
	svc.SetupLog("payment-srv", cfg.LogLevel)
	defer svc.Profile("payment-srv")()
	sigCtx, stop := svc.SignalContext()
	defer stop()
	// A consumer that stops by itself stops the service too, so a supervisor restarts both.
	ctx, cancel := context.WithCancel(sigCtx)
	defer cancel()

	d, err := db.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns, cfg.DBTimeout.Duration)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := db.Migrate(ctx, d, "payment", migrations.FS); err != nil {
		return err
	}
	nc, _, stream, err := events.Connect(ctx, cfg.NATSURL, "payment-srv")
	if err != nil {
		return err
	}
	defer nc.Close()

	store := repo.New(d)
	consumed := make(chan error, 1)
	go func() {
		err := consumer.Run(ctx, stream, store)
		cancel()
		consumed <- err
	}()

	reg := svc.Registry(cfg.NATSURL)
	srv, err := svc.NewServer(handler.Name, cfg.PaymentSrvAddr, reg)
	if err == nil {
		h := handler.New(store)
		err = srv.Handle(func(s server.Server) error { return pb.RegisterPaymentServiceHandler(s, h) })
	}
	if err != nil {
		cancel()
		<-consumed
		return err
	}
	err = srv.Run(ctx)
	cancel()
	// The consumer finishes the events in hand before the database and NATS close.
	if cerr := <-consumed; err == nil {
		err = cerr
	}
	return err
}
