package svc

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"go-micro.dev/v6/client"
	merrors "go-micro.dev/v6/errors"
	"go-micro.dev/v6/registry"
	"go-micro.dev/v6/registry/cache"
	"go-micro.dev/v6/selector"
)

const (
	// deadFor is how long a node that refused a connection is passed over.
	deadFor = 10 * time.Second
	// retryLookup is how long the registry cache goes without asking again after a failed
	// look-up; go-micro's default, 5 s, kept a restarted service "not found" that long.
	retryLookup = 500 * time.Millisecond
)

// skipDead is a registry selector that remembers nodes that could not be reached and
// passes them over for a while. go-micro's own selector ignores Mark, so a killed instance
// would keep getting about half the calls until its registry entry expires; it also builds
// its cache with the 5 s retry interval, which only a package variable changes.
type skipDead struct {
	reg   registry.Registry
	cache cache.Cache
	mu    sync.Mutex
	dead  map[string]time.Time // node id → until
}

func newSkipDead(reg registry.Registry, ttl time.Duration) *skipDead {
	opts := []cache.Option{cache.WithMinimumRetryInterval(retryLookup)}
	if ttl > 0 {
		opts = append(opts, cache.WithTTL(ttl))
	}
	return &skipDead{reg: reg, cache: cache.New(reg, opts...), dead: map[string]time.Time{}}
}

// Init takes no options: the selector is built whole by newSkipDead.
func (s *skipDead) Init(...selector.Option) error { return nil }

// Options reports the registry and the strategy (random, as go-micro's default).
func (s *skipDead) Options() selector.Options {
	return selector.Options{Registry: s.reg, Strategy: selector.Random}
}

// Select returns a picker of random live nodes of service. Each pick leaves out the nodes
// marked dead at that moment (unless none would be left), so the retry of a call that
// found a node dead goes to another one: go-micro draws the picker once per call, before
// its first attempt.
func (s *skipDead) Select(service string, opts ...selector.SelectOption) (selector.Next, error) {
	so := selector.SelectOptions{}
	for _, o := range opts {
		o(&so)
	}
	services, err := s.cache.GetService(service)
	if errors.Is(err, registry.ErrNotFound) {
		return nil, selector.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	for _, f := range so.Filters {
		services = f(services)
	}
	if len(services) == 0 {
		return nil, selector.ErrNoneAvailable
	}
	return func() (*registry.Node, error) {
		var nodes []*registry.Node
		for _, svc := range s.filter(services) {
			nodes = append(nodes, svc.Nodes...)
		}
		if len(nodes) == 0 {
			return nil, selector.ErrNoneAvailable
		}
		return nodes[rand.IntN(len(nodes))], nil
	}, nil
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
func (s *skipDead) Mark(_ string, node *registry.Node, err error) {
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

// Reset forgets nothing: a dead mark lapses by itself.
func (s *skipDead) Reset(string) {}

// Close stops the registry cache.
func (s *skipDead) Close() error {
	s.cache.Stop()
	return nil
}

func (s *skipDead) String() string { return "skipdead" }

// transportFailure is an error raised by go-micro's client itself (no connection, broken
// connection, timeout; the gRPC client reports an unreachable node as 503), as opposed to
// one a handler returned.
func transportFailure(err error) bool {
	e := merrors.FromError(err)
	return e != nil && e.Id == "go.micro.client" && (e.Code == 500 || e.Code == 503 || e.Code == 408)
}

// retryAt is how long a call waits before its retry: a node that refused the connection
// says so at once, so the retry goes to another node at once. (go-micro's own backoff
// waits 100 ms and then 658 ms: the tail a crowd paid for a killed instance.)
func retryAt(_ context.Context, _ client.Request, attempt int) (time.Duration, error) {
	return time.Duration(attempt) * 10 * time.Millisecond, nil
}

// retryTransport retries a call that failed in transport; every state-changing RPC in
// secbuy is idempotent by request id, so a retry cannot do anything twice.
func retryTransport(_ context.Context, _ client.Request, _ int, err error) (bool, error) {
	return transportFailure(err), nil
}
