// Command stock-web serves the stock HTTP API (go.micro.secbuy.web.stock, :8087).
package main

import (
	"context"

	"secbuy/basic/config"
	"secbuy/basic/svc"
	pb "secbuy/stock-srv/proto/stock"
	"secbuy/stock-web/handler"
)

func main() { svc.Main("stock-web", run) }

func run(ctx context.Context, cfg config.Config) error {
	reg := svc.Registry(cfg.NATSURL)
	stock := pb.NewStockService(svc.Internal(pb.Name), svc.Client(reg, cfg.RPCTimeout.Duration, cfg.RegisterTTL.Duration))
	h := handler.New(stock, cfg.AdminKey, cfg.MaxBodyBytes)
	var g svc.Group
	g.Serve("http", svc.Web(handler.Name, cfg.StockWebAddr, reg, h.Routes(), cfg))
	return g.Run(ctx)
}
