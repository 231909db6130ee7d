package test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	eventpb "secbuy/proto/events"
	"secbuy/test/load"
	"secbuy/test/suite"
)

// On a three-node NATS cluster with the event stream on all three nodes, kill -9 of the
// node that leads the stream, in the middle of a sale, loses no event: every order gets
// its payment, every invariant holds, and the registry (on the same cluster) keeps finding
// the services.
func TestNATSCluster(t *testing.T) {
	s := suite.NewNATSCluster(t, append(append([]string{}, chaosEnv...),
		fmt.Sprintf("SECBUY_RATE_KEY_PREFIX=cluster-%d:", time.Now().UnixNano())))
	cfg := load.Config{
		StockURL: s.URL("stock-web"), OrderURL: s.URL("order-web"), PaymentURL: s.URL("payment-web"),
		AdminKey: suite.AdminKey, AuthSecret: suite.AuthSecret, NATSURL: s.NATSURL, Settle: 45 * time.Second,
	}
	waitReady(t, s, cfg)

	nc, err := nats.Connect(s.NATSURL, nats.MaxReconnects(-1))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	info := streamInfo(t, js)
	if info.Config.Replicas != suite.NATSNodes || info.Cluster == nil || len(info.Cluster.Replicas) != suite.NATSNodes-1 {
		t.Fatalf("stream %s: %d replicas configured, cluster %+v; want it on all %d nodes", eventpb.Stream, info.Config.Replicas, info.Cluster, suite.NATSNodes)
	}
	leader := info.Cluster.Leader // "nats-N"
	var node int
	if _, err := fmt.Sscanf(leader, "nats-%d", &node); err != nil {
		t.Fatalf("leader %q: %v", leader, err)
	}
	t.Logf("stream %s leads on %s", eventpb.Stream, leader)

	run := runCrowd(t, cfg, failoverCrowd{buyers: 3000, units: 2000, conns: 64}, map[time.Duration]func(){
		500 * time.Millisecond: func() { s.KillNATSNode(node - 1) },
	})
	checkCrowd(t, cfg, run, "kill -9 of the stream's leader node")
	t.Logf("%d presses resent; the stream now leads on %s", run.resent, streamInfo(t, js).Cluster.Leader)

	// The registry still finds every service: a buy goes through the whole chain.
	r := load.Buy(context.Background(), load.Client(1), cfg, s.Token(777), 777, run.res.Commodity, "after")
	if r.Reason != "sold out" && r.Reason != "ok" {
		t.Errorf("a buy after the node died: %d %s %v", r.Status, r.Reason, r.Err)
	}
}

func streamInfo(t *testing.T, js jetstream.JetStream) *jetstream.StreamInfo {
	t.Helper()
	var info *jetstream.StreamInfo
	err := suite.Eventually(15*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, eventpb.Stream)
		if err != nil {
			return err
		}
		info, err = s.Info(ctx)
		if err == nil && (info.Cluster == nil || strings.TrimSpace(info.Cluster.Leader) == "") {
			err = fmt.Errorf("no leader yet")
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return info
}
