package test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"

	"secbuy/test/suite"
)

// docker-compose.yml is what the README's table says: every service, its replicas, the
// ports it publishes and a healthcheck for each. No Docker runs here, so the file is
// loaded and validated (interpolation, anchors, the schema) by compose-go, the library
// Docker Compose itself is built on.
func TestComposeTopology(t *testing.T) {
	t.Parallel()
	root := suite.Root()
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv([]string{}))
	if err != nil {
		t.Fatal(err)
	}
	project, err := opts.LoadProject(context.Background())
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	want := readmeTopology(t, filepath.Join(root, "README.md"))
	var names []string
	for name := range project.Services {
		names = append(names, name)
	}
	slices.Sort(names)
	var listed []string
	for name := range want {
		listed = append(listed, name)
	}
	slices.Sort(listed)
	if !slices.Equal(names, listed) {
		t.Fatalf("docker-compose.yml has services %v; the README lists %v", names, listed)
	}
	for name, row := range want {
		svc := project.Services[name]
		if got := svc.GetScale(); got != row.replicas {
			t.Errorf("%s: %d replicas; the README says %d", name, got, row.replicas)
		}
		var ports []string
		for _, p := range svc.Ports {
			if p.HostIP != "127.0.0.1" {
				t.Errorf("%s publishes %s on %q: only 127.0.0.1", name, p.Published, p.HostIP)
			}
			ports = append(ports, strconv.Itoa(int(p.Target)))
		}
		if !slices.Equal(ports, row.ports) {
			t.Errorf("%s publishes %v; the README says %v", name, ports, row.ports)
		}
		if svc.HealthCheck == nil || len(svc.HealthCheck.Test) == 0 {
			t.Errorf("%s has no healthcheck", name)
			continue
		}
		test := strings.Join(svc.HealthCheck.Test, " ")
		for _, w := range row.health {
			if !strings.Contains(test, w) {
				t.Errorf("%s: healthcheck %q does not do what the README says (%q)", name, test, w)
			}
		}
	}
	// The web replicas are behind HAProxy, which loads the repo's own configuration.
	lb := project.Services["haproxy"]
	if cmd := strings.Join(lb.Command, " "); !strings.Contains(cmd, "haproxy.cfg") || !strings.Contains(cmd, "compose.cfg") {
		t.Errorf("haproxy runs %q, not deploy/haproxy's configuration", cmd)
	}
	// A cluster of three NATS servers, each routed to the other two, and the services given
	// all three with the stream on all three.
	for i := 1; i <= 3; i++ {
		cmd := strings.Join(project.Services["nats-"+strconv.Itoa(i)].Command, " ")
		for j := 1; j <= 3; j++ {
			if j != i && !strings.Contains(cmd, "nats-"+strconv.Itoa(j)+":6222") {
				t.Errorf("nats-%d is not routed to nats-%d: %s", i, j, cmd)
			}
		}
	}
	env := project.Services["order-srv"].Environment
	if u := env["SECBUY_NATS_URL"]; u == nil || strings.Count(*u, "nats://") != 3 {
		t.Errorf("SECBUY_NATS_URL %v: not the three NATS servers", u)
	}
	if r := env["SECBUY_NATS_REPLICAS"]; r == nil || *r != "3" {
		t.Errorf("SECBUY_NATS_REPLICAS %v; want 3", r)
	}
}

type topologyRow struct {
	replicas int
	ports    []string
	health   []string
}

// readmeTopology reads the README's table of the compose services (between the
// compose-topology markers): service | replicas | published ports | healthcheck, the last
// with the words its test must contain in backquotes and the port it checks after "on".
func readmeTopology(t *testing.T, path string) map[string]topologyRow {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	start := strings.Index(text, "<!-- compose-topology")
	end := strings.Index(text, "<!-- /compose-topology -->")
	if start < 0 || end < start {
		t.Fatal("the README has no compose-topology table")
	}
	rows := map[string]topologyRow{}
	for _, line := range strings.Split(text[start:end], "\n") {
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 4 || strings.HasPrefix(strings.TrimSpace(cells[0]), "-") || strings.TrimSpace(cells[0]) == "service" {
			continue
		}
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		n, err := strconv.Atoi(cells[1])
		if err != nil {
			t.Fatalf("README row %q: replicas: %v", line, err)
		}
		var ports []string
		for _, p := range strings.Split(cells[2], ",") {
			if p = strings.TrimSpace(p); p != "" {
				ports = append(ports, p)
			}
		}
		// "`words` on PORT": the test contains the words, and ":PORT" if a port is named.
		var health []string
		cell := cells[3]
		if i, j := strings.Index(cell, "`"), strings.LastIndex(cell, "`"); i >= 0 && j > i {
			health = append(health, cell[i+1:j])
			cell = cell[j+1:]
		}
		if _, port, ok := strings.Cut(cell, " on "); ok {
			health = append(health, ":"+strings.TrimSpace(port))
		}
		rows[cells[0]] = topologyRow{replicas: n, ports: ports, health: health}
	}
	return rows
}
