package svc

import (
	"errors"
	"testing"
	"time"

	merrors "go-micro.dev/v6/errors"
	"go-micro.dev/v6/registry"
)

func TestSkipDead(t *testing.T) {
	t.Parallel()
	s := &skipDead{dead: map[string]time.Time{}}
	a, b := &registry.Node{Id: "a"}, &registry.Node{Id: "b"}
	services := []*registry.Service{{Name: "x", Nodes: []*registry.Node{a, b}}}
	nodes := func() []string {
		var ids []string
		for _, svc := range s.filter(services) {
			for _, n := range svc.Nodes {
				ids = append(ids, n.Id)
			}
		}
		return ids
	}
	s.Mark("x", a, merrors.New("go.micro.client", "connection error: dial tcp: connection refused", 503))
	if got := nodes(); len(got) != 1 || got[0] != "b" {
		t.Errorf("after a's connection failed: %v; want [b]", got)
	}
	s.Mark("x", b, merrors.InternalServerError("go.micro.secbuy.srv.stock", "storage unavailable"))
	if got := nodes(); len(got) != 1 || got[0] != "b" {
		t.Errorf("a handler error marked b dead: %v", got)
	}
	s.Mark("x", b, merrors.Timeout("go.micro.client", "timeout"))
	if got := nodes(); len(got) != 2 {
		t.Errorf("with every node dead, all are tried again: %v", got)
	}
	s.Mark("x", a, nil)
	if got := nodes(); len(got) != 1 || got[0] != "a" {
		t.Errorf("a answered again: %v; want [a]", got)
	}
	if len(services[0].Nodes) != 2 {
		t.Error("filter changed the registry's own service")
	}
	if !transportFailure(merrors.InternalServerError("go.micro.client", "connection error: refused")) {
		t.Error("the default client's connection error is not a transport failure")
	}
	if transportFailure(errors.New("plain")) {
		t.Error("a plain error counted as a transport failure")
	}
}

// A picker drawn before a node was marked dead passes it over afterwards: the retry of a
// call goes to another node.
func TestSkipDeadPickerSeesLaterMarks(t *testing.T) {
	t.Parallel()
	a, b := &registry.Node{Id: "a"}, &registry.Node{Id: "b"}
	reg := fakeRegistry{services: []*registry.Service{{Name: "x", Nodes: []*registry.Node{a, b}}}}
	s := newSkipDead(reg, 0)
	defer s.Close()
	next, err := s.Select("x")
	if err != nil {
		t.Fatal(err)
	}
	s.Mark("x", a, merrors.New("go.micro.client", "connection refused", 503))
	for range 50 {
		n, err := next()
		if err != nil || n.Id != "b" {
			t.Fatalf("pick after a was marked dead: %v, %v; want b", n, err)
		}
	}
}

// fakeRegistry serves a fixed list of services.
type fakeRegistry struct {
	registry.Registry
	services []*registry.Service
}

func (f fakeRegistry) GetService(string, ...registry.GetOption) ([]*registry.Service, error) {
	return f.services, nil
}

func (f fakeRegistry) Watch(...registry.WatchOption) (registry.Watcher, error) {
	return nil, errors.New("no watching")
}
