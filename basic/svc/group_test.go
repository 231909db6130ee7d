package svc

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
)

// events records what the parts of a test did, in order.
type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, s)
}

func (e *events) get() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.list)
}

// A stop stops the servers first, then runs the drains, then stops the background work,
// and the work added with Last after the rest.
func TestGroupStopOrder(t *testing.T) {
	t.Parallel()
	var ev events
	var g Group
	started := make(chan struct{}, 4)
	g.Serve("server", func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		ev.add("server stopped")
		return nil
	})
	g.Drain(func() { ev.add("drained") })
	for _, name := range []string{"expiry", "consumer"} {
		g.Work(name, func(ctx context.Context) error {
			started <- struct{}{}
			<-ctx.Done()
			ev.add("work stopped")
			return nil
		})
	}
	g.Last("relay", func(ctx context.Context) {
		started <- struct{}{}
		<-ctx.Done()
		ev.add("relay stopped")
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- g.Run(ctx) }()
	for range 4 {
		<-started
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v; want nil after a stop", err)
	}
	if got, want := ev.get(), []string{"server stopped", "drained", "work stopped", "work stopped", "relay stopped"}; !slices.Equal(got, want) {
		t.Errorf("order %v; want %v", got, want)
	}
}

// A part that fails, or stops by itself, stops the others, and Run says which.
func TestGroupPartEnds(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	for _, c := range []struct {
		name string
		err  error
		want error
	}{
		{"fails", boom, boom},
		{"stops by itself", nil, errStoppedByItself},
	} {
		t.Run(c.name, func(t *testing.T) {
			var g Group
			served := make(chan struct{})
			g.Serve("server", func(ctx context.Context) error { <-ctx.Done(); close(served); return nil })
			g.Work("consumer", func(context.Context) error { return c.err })
			err := g.Run(context.Background())
			if !errors.Is(err, c.want) {
				t.Errorf("Run = %v; want %v", err, c.want)
			}
			select {
			case <-served:
			default:
				t.Error("the server was not stopped")
			}
		})
	}
}
