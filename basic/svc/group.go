package svc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/sync/errgroup"
)

// Group is a service's parts: servers that take traffic, the drains that send on what the
// servers handed over (batchers), and background work (relays, consumers, timed loops).
// Run runs them all and stops them in one order, the same in every service.
type Group struct {
	servers []part
	drains  []func()
	work    []part
	last    []part
}

type part struct {
	name string
	run  func(context.Context) error
}

// Serve adds a server: run serves until its context is done, then deregisters, stops
// taking calls and drains those in flight before it returns.
func (g *Group) Serve(name string, run func(context.Context) error) {
	g.servers = append(g.servers, part{name, run})
}

// Drain adds what must finish once the servers are drained and before the background work
// stops, such as a batcher's Close (the buys it holds still write orders and events).
func (g *Group) Drain(f func()) { g.drains = append(g.drains, f) }

// Work adds background work: run works until its context is done, then finishes what it
// has in hand (the events it holds, the outbox rows already committed) and returns.
func (g *Group) Work(name string, run func(context.Context) error) {
	g.work = append(g.work, part{name, run})
}

// Loop adds background work that cannot fail: run loops until its context is done.
func (g *Group) Loop(name string, run func(context.Context)) {
	g.Work(name, func(ctx context.Context) error { run(ctx); return nil })
}

// Last adds background work that must outlast the rest: it is stopped only once the other
// background work has returned, so a relay publishes what the loops committed last.
func (g *Group) Last(name string, run func(context.Context)) {
	g.last = append(g.last, part{name, func(ctx context.Context) error { run(ctx); return nil }})
}

// errStoppedByItself is the error of a part that returned before it was asked to stop.
var errStoppedByItself = errors.New("stopped by itself")

// Run runs every part until ctx is done or a part ends by itself (failed, or stopped on
// its own: a consumer whose connection is gone, say), and then stops them in this order:
//
//  1. the servers, together: each deregisters, so callers pick other instances, stops
//     taking calls and drains those in flight;
//  2. the drains, in the order added;
//  3. the background work, together: consumers finish the events in hand, timed loops stop;
//  4. the background work added with Last (the relays), which publish the outbox rows
//     committed until then.
//
// Closing what the parts use (the database, NATS) is left to the caller, after Run: the
// defers in a service's run, so that closing always comes last. Run returns the first
// failure of the servers and of the background work.
func (g *Group) Run(ctx context.Context) error {
	stopping, stop := context.WithCancel(ctx)
	defer stop()
	background, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	final, stopLast := context.WithCancel(context.WithoutCancel(ctx))
	defer stopLast()
	var servers, work, last errgroup.Group
	start := func(eg *errgroup.Group, ctx context.Context, p part) {
		eg.Go(func() error {
			err := p.run(ctx)
			if err == nil && stopping.Err() == nil {
				err = errStoppedByItself
			}
			stop() // one part ending ends them all
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			return nil
		})
	}
	for _, p := range g.last {
		start(&last, final, p)
	}
	for _, p := range g.work {
		start(&work, background, p)
	}
	for _, p := range g.servers {
		start(&servers, stopping, p)
	}
	<-stopping.Done()
	shuttingDown.Store(true) // not ready, from now on
	begun := time.Now()
	slog.Info("stopping: deregister, drain the calls in flight, finish the background work")
	serr := servers.Wait()
	for _, d := range g.drains {
		d()
	}
	stopWork()
	werr := work.Wait()
	stopLast()
	err := errors.Join(serr, werr, last.Wait())
	slog.Info("stopped", "took", time.Since(begun).Round(time.Millisecond), "err", err)
	return err
}
