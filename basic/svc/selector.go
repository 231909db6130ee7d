package svc

import (
	"context"
	"sync"
	"time"

	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"
	"go-micro.dev/v6/registry"
	"go-micro.dev/v6/selector"
)

// deadFor is how long a node that refused a connection is passed over.
const deadFor = 10 * time.Second

// skipDead is a registry selector that remembers nodes that could not be reached and
// passes them over for a while. go-micro's own selector ignores Mark, so a killed instance
// would keep getting about half the calls until its registry entry expires (about a minute).
type skipDead struct {
	selector.Selector
	mu   sync.Mutex
	dead map[string]time.Time // node id → until
}

func newSkipDead(reg registry.Registry) *skipDead {
	return &skipDead{Selector: selector.NewSelector(selector.Registry(reg)), dead: map[string]time.Time{}}
}

// Select filters out nodes marked dead, unless none would be left.
func (s *skipDead) Select(service string, opts ...selector.SelectOption) (selector.Next, error) {
	return s.Selector.Select(service, append(opts, selector.WithFilter(s.filter))...)
}

func (s *skipDead) filter(services []*registry.Service) []*registry.Service {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.dead) == 0 {
		return services
	}
	now := time.Now()
	var out []*registry.Service
	for _, svc := range services {
		cp := *svc
		cp.Nodes = nil
		for _, n := range svc.Nodes {
			if until, ok := s.dead[n.Id]; !ok || now.After(until) {
				cp.Nodes = append(cp.Nodes, n)
			}
		}
		if len(cp.Nodes) > 0 {
			out = append(out, &cp)
		}
	}
	if len(out) == 0 {
		return services
	}
	return out
}

// Mark records a node that failed at the transport level, and clears one that answered.
func (s *skipDead) Mark(service string, node *registry.Node, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		delete(s.dead, node.Id)
		return
	}
	if transportFailure(err) {
		s.dead[node.Id] = time.Now().Add(deadFor)
	}
}

// transportFailure is an error raised by go-micro's client itself (no connection, broken
// connection, timeout; the gRPC client reports an unreachable node as 503), as opposed to
// one a handler returned.
func transportFailure(err error) bool {
	e := merrors.FromError(err)
	return e != nil && e.Id == "go.micro.client" && (e.Code == 500 || e.Code == 503 || e.Code == 408)
}

// retryTransport retries a call that failed in transport; every state-changing RPC in
// secbuy is idempotent by request id, so a retry cannot do anything twice.
func retryTransport(_ context.Context, _ client.Request, _ int, err error) (bool, error) {
	return transportFailure(err), nil
}
