// Command payment-web serves the payment HTTP API (go.micro.secbuy.web.payment, :8089).
package main

import (
	"context"

	"secbuy/basic/auth"
	"secbuy/basic/config"
	"secbuy/basic/httpapi"
	"secbuy/basic/svc"
	pb "secbuy/payment-srv/proto/payment"
	"secbuy/payment-web/handler"
)

func main() { svc.Main("payment-web", run) }

func run(ctx context.Context, cfg config.Config) error {
	verifier, err := auth.FromConfig(cfg)
	if err != nil {
		return err
	}
	reg, err := svc.Registry(cfg)
	if err != nil {
		return err
	}
	payment := pb.NewPaymentService(svc.Internal(pb.Name), svc.Client(reg, cfg.RPCTimeout.Duration, cfg.RegisterTTL.Duration))
	h := handler.New(payment, verifier, cfg.MaxBodyBytes,
		httpapi.NewLimiter(cfg.MaxInflight, cfg.QueueWait.Duration))
	var g svc.Group
	// The buyer page (order-web's origin) pays here: see httpapi.CORS.
	g.Serve("http", svc.Web(handler.Name, cfg.PaymentWebAddr, reg, httpapi.CORS(cfg.CORSOrigins, h.Routes()), cfg))
	return g.Run(ctx)
}
