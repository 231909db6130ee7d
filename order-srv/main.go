// Command order-srv serves OrderService (go.micro.secbuy.srv.order): orders, their recovery,
// the relay of payment events to JetStream, and the consumer of payment.expired that
// cancels an unpaid order and gives its unit back.
package main

import (
	"go-micro.dev/v6/server"
	"log"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"secbuy/basic/config"
	"secbuy/basic/db"
	"secbuy/basic/events"
	"secbuy/basic/svc"
	"secbuy/order-srv/expired"
	"secbuy/order-srv/handler"
	"secbuy/order-srv/migrations"
	pb "secbuy/order-srv/proto/order"
	"secbuy/order-srv/relay"
	"secbuy/order-srv/repo"
	stocksrv "secbuy/stock-srv/handler"
	stockpb "secbuy/stock-srv/proto/stock"
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
	svc.SetupLog("order-srv", cfg.LogLevel)
	defer svc.Profile("order-srv")()
	ctx, stop := svc.SignalContext()
	defer stop()

	d, err := db.Open(ctx, cfg.DatabaseURL, cfg.DBMaxConns, cfg.DBTimeout.Duration)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := db.Migrate(ctx, d, "order", migrations.FS); err != nil {
		return err
	}
	nc, _, stream, err := events.Connect(ctx, cfg.NATSURL, "order-srv")
	if err != nil {
		return err
	}
	defer nc.Close()
	// A JetStream handle of our own, so that unanswered publishes time out and are dropped.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(relay.AckTimeout))
	if err != nil {
		return err
	}

	store := repo.New(d)
	rl := relay.New(store, js)
	reg := svc.Registry(cfg.NATSURL)
	cli := svc.Client(reg, cfg.RPCTimeout.Duration)
	stock := stockpb.NewStockService(svc.Internal(stocksrv.Name), cli)
	h := handler.New(store, stock, rl.Poke, cfg.RPCTimeout.Duration)
	defer h.Close() // after the server has drained its calls

	var wg sync.WaitGroup
	defer wg.Wait()
	defer stop() // before wg.Wait: if the service fails, the loops must end too
	wg.Add(2)
	go func() { defer wg.Done(); rl.Run(ctx) }()
	go func() { defer wg.Done(); h.RunRecovery(ctx, cfg.RecoverEvery.Duration, cfg.RecoverAfter.Duration) }()
	// A consumer that stops by itself stops the service too, so a supervisor restarts both.
	// It finishes the events in hand before NATS closes.
	var consumeErr error
	wg.Go(func() {
		consumeErr = expired.New(store, stock, cfg.RPCTimeout.Duration).Run(ctx, stream)
		stop()
	})

	srv, err := svc.NewServer(handler.Name, cfg.OrderSrvAddr, reg)
	if err != nil {
		return err
	}
	if err := srv.Handle(func(s server.Server) error { return pb.RegisterOrderServiceHandler(s, h) }); err != nil {
		return err
	}
	err = srv.Run(ctx)
	stop()
	wg.Wait()
	if err == nil {
		err = consumeErr
	}
	return err
}
