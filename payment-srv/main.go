// Command payment-srv serves PaymentService (go.micro.secbuy.srv.payment), turns the
// payment.payevent stream into one unpaid payment per order, expires payments left unpaid
// longer than pay_timeout, and relays their payment.expired events to JetStream.
package main

import (
	"context"
	"fmt"
	"log"
	"sync"

	"github.com/nats-io/nats.go/jetstream"
	"go-micro.dev/v6/server"

	"secbuy/basic/config"
	"secbuy/basic/db"
	"secbuy/basic/events"
	"secbuy/basic/outbox"
	"secbuy/basic/svc"
	"secbuy/payment-srv/consumer"
	"secbuy/payment-srv/expiry"
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
	if cfg.PayTimeout.Duration <= 0 || cfg.ExpireEvery.Duration <= 0 {
		return fmt.Errorf("config: pay_timeout and expire_every must be positive")
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
	// A JetStream handle of our own, so that unanswered publishes time out and are dropped.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(outbox.AckTimeout))
	if err != nil {
		return err
	}

	store := repo.New(d)
	// The expiry loop and the relay of its events stop before the database and NATS close.
	rl := outbox.NewRelay(store, js, events.ExpiredTopic)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() { rl.Run(ctx) })
	wg.Go(func() { expiry.Run(ctx, store, cfg.ExpireEvery.Duration, cfg.PayTimeout.Duration, rl.Poke) })
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
