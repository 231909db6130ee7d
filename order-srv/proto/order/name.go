package order

// Name is order-srv's registry name: the default RPC that the micro CLI and other go-micro
// clients call. secbuy's own services call its gRPC twin, svc.Internal(Name).
const Name = "go.micro.secbuy.srv.order"
