package test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/types"
	"go.yaml.in/yaml/v4"

	"secbuy/test/suite"
)

// docker-compose.yml is what the README's table says: every service, its replicas, the
// ports it publishes and a healthcheck for each. No Docker runs here, so the file is
// loaded and validated (interpolation, anchors, the schema) by compose-go, the library
// Docker Compose itself is built on.
func TestComposeTopology(t *testing.T) {
	t.Parallel()
	root := suite.Root()
	project := loadCompose(t, root)
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

// composeSecrets are the variables docker-compose.yml requires (it has no defaults for them).
var composeSecrets = []string{
	"SECBUY_AUTH_SECRET=compose-test-auth-secret-of-32-bytes+",
	"SECBUY_ADMIN_KEY=compose-test-admin-key-of-32-bytes+++",
}

// loadCompose loads docker-compose.yml as Docker Compose would, with only the required
// secrets set.
func loadCompose(t *testing.T, root string) *types.Project {
	t.Helper()
	project, err := composeProject(root, composeSecrets)
	if err != nil {
		t.Fatalf("docker-compose.yml does not load: %v", err)
	}
	return project
}

// composeProject loads docker-compose.yml with the variables env (KEY=VALUE) only.
func composeProject(root string, env []string) (*types.Project, error) {
	opts, err := cli.NewProjectOptions([]string{filepath.Join(root, "docker-compose.yml")},
		cli.WithWorkingDirectory(root), cli.WithEnv(env))
	if err != nil {
		return nil, err
	}
	return opts.LoadProject(context.Background())
}

// docker-compose.yml has no default secrets: without SECBUY_AUTH_SECRET or SECBUY_ADMIN_KEY
// it does not load, naming the one missing; with them every secbuy service gets them, and
// none runs in development mode.
func TestComposeSecrets(t *testing.T) {
	t.Parallel()
	root := suite.Root()
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"neither", nil, "SECBUY_AUTH_SECRET"},
		{"no admin key", composeSecrets[:1], "SECBUY_ADMIN_KEY"},
		{"no auth secret", composeSecrets[1:], "SECBUY_AUTH_SECRET"},
	} {
		_, err := composeProject(root, tc.env)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: loading gives %v; want an error naming %s", tc.name, err, tc.want)
		}
	}
	project := loadCompose(t, root)
	for _, name := range suite.Services {
		env := project.Services[name].Environment
		for _, kv := range composeSecrets {
			k, v, _ := strings.Cut(kv, "=")
			if got := env[k]; got == nil || *got != v {
				t.Errorf("%s: %s is %v; want the value given to compose", name, k, got)
			}
		}
		for _, k := range []string{"SECBUY_DEV", "SECBUY_DEV_LOGIN"} {
			if v, set := env[k]; set {
				t.Errorf("%s: %s is set (%v): not in a deployment", name, k, v)
			}
		}
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

// promConfig is the part of a Prometheus configuration secbuy writes. It is decoded
// strictly, as Prometheus itself decodes it: a misspelt key fails here as it would fail
// Prometheus's start (a key Prometheus knows but this test does not must be added here).
type promConfig struct {
	Global struct {
		ScrapeInterval     string `yaml:"scrape_interval"`
		ScrapeTimeout      string `yaml:"scrape_timeout"`
		EvaluationInterval string `yaml:"evaluation_interval"`
	} `yaml:"global"`
	ScrapeConfigs []struct {
		JobName        string `yaml:"job_name"`
		ScrapeInterval string `yaml:"scrape_interval"`
		MetricsPath    string `yaml:"metrics_path"`
		Scheme         string `yaml:"scheme"`
		DNSSD          []struct {
			Names           []string `yaml:"names"`
			Type            string   `yaml:"type"`
			Port            int      `yaml:"port"`
			RefreshInterval string   `yaml:"refresh_interval"`
		} `yaml:"dns_sd_configs"`
		Static []struct {
			Targets []string `yaml:"targets"`
		} `yaml:"static_configs"`
	} `yaml:"scrape_configs"`
}

func readPromConfig(t *testing.T, path string) promConfig {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	dec.KnownFields(true)
	var c promConfig
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return c
}

// metricsPort is the port a secbuy service of docker-compose.yml serves /metrics on: a web
// service's own HTTP address (SECBUY_<NAME>_WEB_ADDR), an RPC service's SECBUY_HEALTH_ADDR.
func metricsPort(t *testing.T, svc types.ServiceConfig) int {
	t.Helper()
	v := "SECBUY_HEALTH_ADDR"
	if base, ok := strings.CutSuffix(svc.Name, "-web"); ok {
		v = "SECBUY_" + strings.ToUpper(base) + "_WEB_ADDR"
	}
	addr := svc.Environment[v]
	if addr == nil {
		t.Fatalf("%s has no %s", svc.Name, v)
	}
	_, p, _ := strings.Cut(*addr, ":")
	port, err := strconv.Atoi(p)
	if err != nil || port == 0 {
		t.Fatalf("%s: %s=%q has no fixed port to scrape", svc.Name, v, *addr)
	}
	return port
}

// The Prometheus of docker-compose.yml scrapes every replica of every secbuy service (the
// services built from this repo's Dockerfile) through Docker's DNS, on the port each
// serves /metrics on, and nothing else; the one of `make up` scrapes the same jobs where
// scripts/suite.sh puts a single instance of each.
func TestComposePrometheus(t *testing.T) {
	t.Parallel()
	root := suite.Root()
	project := loadCompose(t, root)

	ports := map[string]int{}
	for name, svc := range project.Services {
		if svc.Build == nil {
			continue
		}
		ports[name] = metricsPort(t, svc)
		// /metrics is served beside /health/ready, which the healthcheck asks on that port.
		url := fmt.Sprintf("http://127.0.0.1:%d/health/ready", ports[name])
		if svc.HealthCheck == nil || !slices.Contains(svc.HealthCheck.Test, url) {
			t.Errorf("%s: healthcheck %v does not ask %s", name, svc.HealthCheck, url)
		}
	}
	if len(ports) != 6 {
		t.Fatalf("docker-compose.yml builds %d secbuy services, want the six: %v", len(ports), ports)
	}

	cfg := readPromConfig(t, filepath.Join(root, "deploy/prometheus/prometheus.yml"))
	if cfg.Global.ScrapeInterval != "5s" {
		t.Errorf("prometheus.yml: scrape_interval %q, want 5s", cfg.Global.ScrapeInterval)
	}
	var jobs []string
	for _, sc := range cfg.ScrapeConfigs {
		jobs = append(jobs, sc.JobName)
		want, ok := ports[sc.JobName]
		if !ok {
			t.Errorf("prometheus.yml: job %q is not a secbuy service of docker-compose.yml", sc.JobName)
			continue
		}
		if sc.ScrapeInterval != "" && sc.ScrapeInterval != "5s" {
			t.Errorf("job %s: scrape_interval %q, want 5s", sc.JobName, sc.ScrapeInterval)
		}
		if (sc.MetricsPath != "" && sc.MetricsPath != "/metrics") || (sc.Scheme != "" && sc.Scheme != "http") {
			t.Errorf("job %s scrapes %s %s, want http /metrics", sc.JobName, sc.Scheme, sc.MetricsPath)
		}
		if len(sc.Static) != 0 || len(sc.DNSSD) != 1 {
			t.Errorf("job %s: %d static and %d DNS configs, want one DNS lookup of the replicas", sc.JobName, len(sc.Static), len(sc.DNSSD))
			continue
		}
		d := sc.DNSSD[0]
		if !slices.Equal(d.Names, []string{sc.JobName}) || d.Type != "A" || d.Port != want {
			t.Errorf("job %s looks up %v type %q port %d; want [%s] type A port %d", sc.JobName, d.Names, d.Type, d.Port, sc.JobName, want)
		}
	}
	var services []string
	for name := range ports {
		services = append(services, name)
	}
	slices.Sort(services)
	sorted := slices.Sorted(slices.Values(jobs))
	if !slices.Equal(sorted, services) {
		t.Errorf("prometheus.yml has jobs %v; want one per secbuy service, %v", jobs, services)
	}

	// Prometheus reads the repo's file, read-only, where the image looks for it.
	checkMount(t, project.Services["prometheus"], filepath.Join(root, "deploy/prometheus/prometheus.yml"), "/etc/prometheus/prometheus.yml")
	if img := project.Services["prometheus"].Image; !regexp.MustCompile(`^prom/prometheus:v[23]\.\d+\.\d+$`).MatchString(img) {
		t.Errorf("prometheus image %q is not a pinned v2/v3 release", img)
	}

	// `make up`: a web service on its public port, srv k (0 stock, 1 order, 2 payment)
	// instance 1 on 17011+100k (scripts/suite.sh unit_addr).
	srvK := map[string]int{"stock-srv": 0, "order-srv": 1, "payment-srv": 2}
	local := readPromConfig(t, filepath.Join(root, "deploy/prometheus/prometheus-local.yml"))
	var localJobs []string
	for _, sc := range local.ScrapeConfigs {
		localJobs = append(localJobs, sc.JobName)
		want := "127.0.0.1:" + strconv.Itoa(ports[sc.JobName])
		if k, ok := srvK[sc.JobName]; ok {
			want = "127.0.0.1:" + strconv.Itoa(17011+100*k)
		}
		if len(sc.DNSSD) != 0 || len(sc.Static) != 1 || !slices.Equal(sc.Static[0].Targets, []string{want}) {
			t.Errorf("prometheus-local.yml: job %s scrapes %+v; want [%s]", sc.JobName, sc.Static, want)
		}
	}
	if !slices.Equal(localJobs, jobs) {
		t.Errorf("prometheus-local.yml has jobs %v; prometheus.yml %v", localJobs, jobs)
	}
}

func checkMount(t *testing.T, svc types.ServiceConfig, source, target string) {
	t.Helper()
	for _, v := range svc.Volumes {
		if v.Target == target {
			if v.Source != source || !v.ReadOnly {
				t.Errorf("%s mounts %s (read-only %v) at %s; want %s read-only", svc.Name, v.Source, v.ReadOnly, target, source)
			}
			return
		}
	}
	t.Errorf("%s does not mount %s at %s", svc.Name, source, target)
}

// Grafana starts once Prometheus is ready, with the repo's data source and dashboard
// provisioned, and the data source is the compose Prometheus, under the uid the
// dashboard names.
func TestComposeGrafana(t *testing.T) {
	t.Parallel()
	root := suite.Root()
	project := loadCompose(t, root)
	g := project.Services["grafana"]
	if !regexp.MustCompile(`^grafana/grafana:\d+\.\d+\.\d+$`).MatchString(g.Image) {
		t.Errorf("grafana image %q is not a pinned release", g.Image)
	}
	if dep, ok := g.DependsOn["prometheus"]; !ok || dep.Condition != types.ServiceConditionHealthy {
		t.Errorf("grafana depends on prometheus %+v; want service_healthy", dep)
	}
	checkMount(t, g, filepath.Join(root, "deploy/grafana/provisioning"), "/etc/grafana/provisioning")

	var ds struct {
		Datasources []struct {
			UID  string `yaml:"uid"`
			Type string `yaml:"type"`
			URL  string `yaml:"url"`
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(root, "deploy/grafana/provisioning/datasources/prometheus.yml"), &ds)
	if len(ds.Datasources) != 1 {
		t.Fatalf("datasources/prometheus.yml: %d data sources, want 1", len(ds.Datasources))
	}
	promPort := project.Services["prometheus"].Ports[0].Target
	if d := ds.Datasources[0]; d.UID != "prometheus" || d.Type != "prometheus" || d.URL != fmt.Sprintf("http://prometheus:%d", promPort) {
		t.Errorf("data source %+v; want uid and type prometheus at http://prometheus:%d", d, promPort)
	}

	var dp struct {
		Providers []struct {
			Type    string `yaml:"type"`
			Options struct {
				Path string `yaml:"path"`
			} `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(root, "deploy/grafana/provisioning/dashboards/secbuy.yml"), &dp)
	if len(dp.Providers) != 1 || dp.Providers[0].Type != "file" {
		t.Fatalf("dashboards/secbuy.yml: providers %+v; want one of type file", dp.Providers)
	}
	// The provider reads the directory compose mounts the repo's dashboards at.
	checkMount(t, g, filepath.Join(root, "deploy/grafana/dashboards"), dp.Providers[0].Options.Path)
	if _, err := os.Stat(filepath.Join(root, "deploy/grafana/dashboards/secbuy.json")); err != nil {
		t.Error(err)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// dashboardMetrics are the series the services export (basic/metrics, go-micro's
// wrapper, client_golang's DBStatsCollector), by kind: a histogram is queried through
// its _bucket, _sum and _count series.
var dashboardMetrics = map[string]string{
	"secbuy_http_requests_total":            "counter",
	"secbuy_http_request_duration_seconds":  "histogram",
	"secbuy_inflight_in_use":                "gauge",
	"secbuy_inflight_capacity":              "gauge",
	"secbuy_inflight_wait_seconds":          "histogram",
	"secbuy_redis_fail_open_total":          "counter",
	"secbuy_batch_size":                     "histogram",
	"micro_request_total":                   "counter",
	"micro_request_duration_seconds":        "histogram",
	"secbuy_outbox_backlog":                 "gauge",
	"secbuy_outbox_lag_seconds":             "gauge",
	"secbuy_orders_pending":                 "gauge",
	"secbuy_payments_pending":               "gauge",
	"secbuy_jetstream_consumer_pending":     "gauge",
	"secbuy_jetstream_consumer_ack_pending": "gauge",
	"secbuy_jetstream_consumer_redelivered": "gauge",
	"secbuy_stock_left":                     "gauge",
	"go_sql_in_use_connections":             "gauge",
	"go_sql_open_connections":               "gauge",
	"go_sql_max_open_connections":           "gauge",
}

// exportedMetric returns the metric a series name belongs to ("" for Go's and the
// process's defaults and Prometheus's up), and whether the services export it at all.
func exportedMetric(series string) (string, bool) {
	if kind, ok := dashboardMetrics[series]; ok {
		return series, kind != "histogram" // a histogram has no series of its bare name
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(series, suffix); ok && dashboardMetrics[base] == "histogram" {
			return base, true
		}
	}
	ok := series == "up" || strings.HasPrefix(series, "go_") || strings.HasPrefix(series, "process_")
	return "", ok
}

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}|\[[^\]]*\]`)
	promGrouping = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promToken    = regexp.MustCompile(`[0-9][0-9a-zA-Z.]*|[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left", "group_right", "inf", "nan"}
)

// promSeries returns the series names a PromQL expression selects: every identifier that
// is not a function or aggregation (followed by "("), a keyword, a number, or inside
// a string, a label matcher, a range or a grouping.
func promSeries(expr string) []string {
	e := promString.ReplaceAllString(expr, `""`)
	e = promMatchers.ReplaceAllString(e, " ")
	e = promGrouping.ReplaceAllString(e, " ")
	var names []string
	for _, loc := range promToken.FindAllStringIndex(e, -1) {
		tok := e[loc[0]:loc[1]]
		if tok[0] >= '0' && tok[0] <= '9' || slices.Contains(promKeywords, strings.ToLower(tok)) {
			continue
		}
		if rest := strings.TrimLeft(e[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue
		}
		names = append(names, tok)
	}
	return names
}

func TestComposePromSeries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, expr string
		want       []string
	}{
		{"selector", `up`, []string{"up"}},
		{"matchers and range", `sum by (reason) (rate(secbuy_http_requests_total{route="/order/sell",reason=~"SOLD_OUT|x(y)"}[$__rate_interval]))`, []string{"secbuy_http_requests_total"}},
		{"quantile", `histogram_quantile(0.99, sum by (le, service) (rate(micro_request_duration_seconds_bucket[5m])))`, []string{"micro_request_duration_seconds_bucket"}},
		{"binary", `sum(a_total) / on (job) group_left sum(b) > bool 1e3 offset 5m`, []string{"a_total", "b"}},
		{"string label value named like a metric", `max by (job) (go_goroutines{job="stock_left"})`, []string{"go_goroutines"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := promSeries(tc.expr); !slices.Equal(got, tc.want) {
				t.Errorf("promSeries(%q) = %v; want %v", tc.expr, got, tc.want)
			}
		})
	}
}

type grafanaPanel struct {
	ID         int    `json:"id"`
	Type       string `json:"type"`
	Title      string `json:"title"`
	Datasource *struct {
		UID string `json:"uid"`
	} `json:"datasource"`
	Targets []struct {
		Expr       string `json:"expr"`
		Datasource *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

// The dashboard is valid JSON for the provisioned data source, and every panel queries
// only series the services export (or Go's and the process's defaults, or up); every
// metric the services export for it is on some panel.
func TestComposeDashboard(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(suite.Root(), "deploy/grafana/dashboards/secbuy.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID           string         `json:"uid"`
		Title         string         `json:"title"`
		SchemaVersion int            `json:"schemaVersion"`
		Panels        []grafanaPanel `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("secbuy.json: %v", err)
	}
	if dash.UID == "" || dash.Title == "" || dash.SchemaVersion < 39 {
		t.Errorf("dashboard uid %q title %q schemaVersion %d; want a uid, a title and schema 39 or later", dash.UID, dash.Title, dash.SchemaVersion)
	}
	var all []grafanaPanel
	for _, p := range dash.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	ids := map[int]bool{}
	used := map[string]bool{}
	graphs := 0
	for _, p := range all {
		if ids[p.ID] {
			t.Errorf("panel %q: id %d used twice", p.Title, p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			continue
		}
		graphs++
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, q := range p.Targets {
			ds := q.Datasource
			if ds == nil {
				ds = p.Datasource
			}
			if ds == nil || ds.UID != "prometheus" {
				t.Errorf("panel %q: query %q is not on the data source uid prometheus", p.Title, q.Expr)
			}
			series := promSeries(q.Expr)
			if len(series) == 0 {
				t.Errorf("panel %q: query %q selects no series", p.Title, q.Expr)
			}
			for _, s := range series {
				m, ok := exportedMetric(s)
				if !ok {
					t.Errorf("panel %q: %s is not a series the services export (query %q)", p.Title, s, q.Expr)
				}
				used[m] = true
			}
		}
	}
	if graphs == 0 {
		t.Fatal("the dashboard has no panels")
	}
	for m := range dashboardMetrics {
		if !used[m] {
			t.Errorf("no panel shows %s", m)
		}
	}
}
