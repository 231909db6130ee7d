// Command payment-web serves the payment HTTP API (go.micro.secbuy.web.payment, :8089).
package main

import (
	"log"

	"secbuy/basic/config"
	"secbuy/basic/httpapi"
	"secbuy/basic/svc"
	paymentsrv "secbuy/payment-srv/handler"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-web/handler"
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
	svc.SetupLog("payment-web", cfg.LogLevel)
	defer svc.Profile("payment-web")()
	ctx, stop := svc.SignalContext()
	defer stop()

	reg := svc.Registry(cfg.NATSURL)
	payment := pb.NewPaymentService(svc.Internal(paymentsrv.Name), svc.Client(reg, cfg.RPCTimeout.Duration))
	h := handler.New(payment, cfg.AuthSecret, cfg.MaxBodyBytes, httpapi.NewLimiter(cfg.MaxInflight, cfg.QueueWait.Duration))
	return svc.RunWeb(ctx, handler.Name, cfg.PaymentWebAddr, reg, h.Routes(), cfg.HTTPReadTimeout.Duration, cfg.HTTPWriteTimeout.Duration)
}
