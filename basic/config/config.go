// Package config loads the settings every secbuy service shares: built-in defaults for a
// local machine, then (only with SECBUY_DEV=1) the development secrets, then an optional
// JSON file, then environment variables, so every address, port and secret can be
// overridden without a rebuild. A setting that does not parse, or
// a SECBUY_ variable that names no setting, fails start-up with a message naming it.
package config

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
)

//go:embed defaults.json
var defaults []byte

// Prefix starts the environment variable of every setting: SECBUY_ plus the env tag.
const Prefix = "SECBUY_"

// Config is the whole configuration. Each field's variable is SECBUY_ plus its env tag,
// for example SECBUY_DATABASE_URL or SECBUY_ORDER_WEB_ADDR; its key in a JSON file is
// the json tag.
type Config struct {
	DatabaseURL string   `json:"database_url" env:"DATABASE_URL"`
	DBMaxConns  int      `json:"db_max_conns" env:"DB_MAX_CONNS"`
	DBTimeout   Duration `json:"db_timeout" env:"DB_TIMEOUT"`
	// NATSURL is one NATS URL, or a comma-separated list of a cluster's (the client tries
	// each); NATSReplicas is how many cluster nodes keep each event of the stream (1 for a
	// single server, 3 for a three-node cluster).
	NATSURL      string `json:"nats_url" env:"NATS_URL"`
	NATSReplicas int    `json:"nats_replicas" env:"NATS_REPLICAS"`
	RedisAddr    string `json:"redis_addr" env:"REDIS_ADDR"`
	AuthSecret   string `json:"auth_secret" env:"AUTH_SECRET"`
	AdminKey     string `json:"admin_key" env:"ADMIN_KEY"`
	// The listen addresses. Loopback by default: a service registers the host it binds
	// to, and a wildcard host makes go-micro advertise eth0 instead.
	StockSrvAddr   string   `json:"stock_srv_addr" env:"STOCK_SRV_ADDR"`
	OrderSrvAddr   string   `json:"order_srv_addr" env:"ORDER_SRV_ADDR"`
	PaymentSrvAddr string   `json:"payment_srv_addr" env:"PAYMENT_SRV_ADDR"`
	StockWebAddr   string   `json:"stock_web_addr" env:"STOCK_WEB_ADDR"`
	OrderWebAddr   string   `json:"order_web_addr" env:"ORDER_WEB_ADDR"`
	PaymentWebAddr string   `json:"payment_web_addr" env:"PAYMENT_WEB_ADDR"`
	RPCTimeout     Duration `json:"rpc_timeout" env:"RPC_TIMEOUT"`
	// HealthAddr is where an RPC service serves /health/live and /health/ready (a web
	// service serves them on its own address). RegisterInterval is how often an instance
	// announces itself in the registry, and RegisterTTL how long a caller keeps an instance
	// it has not heard from (so a killed one leaves within it). StopDelay is how long an
	// instance that was asked to stop keeps serving while it reports not ready, so a load
	// balancer and the callers stop sending to it before it drains.
	HealthAddr       string   `json:"health_addr" env:"HEALTH_ADDR"`
	RegisterInterval Duration `json:"register_interval" env:"REGISTER_INTERVAL"`
	RegisterTTL      Duration `json:"register_ttl" env:"REGISTER_TTL"`
	StopDelay        Duration `json:"stop_delay" env:"STOP_DELAY"`
	// StockBuckets is how many rows a new commodity's count is split over unless it asks
	// for a number of its own (1: one row; see stock-srv migration 004).
	StockBuckets int `json:"stock_buckets" env:"STOCK_BUCKETS"`
	// OutboxRetention is how long a sent outbox row is kept before it is deleted.
	OutboxRetention Duration `json:"outbox_retention" env:"OUTBOX_RETENTION"`
	// RecoverAfter is how old a pending order must be before recovery drives it;
	// RecoverEvery is how often recovery looks.
	RecoverAfter Duration `json:"recover_after" env:"RECOVER_AFTER"`
	RecoverEvery Duration `json:"recover_every" env:"RECOVER_EVERY"`
	// PayTimeout is how long a payment may stay unpaid before it expires (its order is then
	// cancelled and its unit goes back on sale); ExpireEvery is how often payment-srv looks.
	PayTimeout   Duration `json:"pay_timeout" env:"PAY_TIMEOUT"`
	ExpireEvery  Duration `json:"expire_every" env:"EXPIRE_EVERY"`
	MaxBodyBytes int64    `json:"max_body_bytes" env:"MAX_BODY_BYTES"`
	// HTTPReadTimeout and HTTPWriteTimeout bound reading a request and writing its answer
	// on every web service.
	HTTPReadTimeout  Duration `json:"http_read_timeout" env:"HTTP_READ_TIMEOUT"`
	HTTPWriteTimeout Duration `json:"http_write_timeout" env:"HTTP_WRITE_TIMEOUT"`
	// MaxInflight caps each web instance's requests in flight to its RPC service; a request
	// waits up to QueueWait for a slot, then gets 503.
	MaxInflight int      `json:"max_inflight" env:"MAX_INFLIGHT"`
	QueueWait   Duration `json:"queue_wait" env:"QUEUE_WAIT"`
	// TokenCacheSize bounds each web instance's cache of verified bearer tokens.
	TokenCacheSize int `json:"token_cache_size" env:"TOKEN_CACHE_SIZE"`
	// LogLevel is the least level logged (debug, info, warn, error); LogFormat is "json",
	// "text", or "auto": text when stderr is a terminal, JSON otherwise.
	LogLevel  string `json:"log_level" env:"LOG_LEVEL"`
	LogFormat string `json:"log_format" env:"LOG_FORMAT"`
	// Metrics makes the web routes count their requests by route, status and reason
	// (false: to measure what that costs). /metrics is served either way.
	Metrics bool `json:"metrics" env:"METRICS"`
	// TraceFile, if set, makes every service write its trace spans there, one JSON object
	// per line (a test's exporter). OTEL_EXPORTER_OTLP_ENDPOINT, the OpenTelemetry
	// variable, sends them over OTLP/HTTP instead. With neither, nothing is traced.
	TraceFile string `json:"trace_file" env:"TRACE_FILE"`
	// ProfileDir, if set, makes every service write CPU and allocation profiles there when
	// it stops (a development knob, used by `make bench`).
	ProfileDir string `json:"profile_dir" env:"PROFILE_DIR"`
	// GCPercent is the services' GOGC (100: Go's default), and MemLimitMB their soft memory
	// limit (GOMEMLIMIT; 0: none), which makes the collector work harder as the heap nears
	// it: a crowd's garbage then does not double the memory a service takes.
	GCPercent  int `json:"gc_percent" env:"GC_PERCENT"`
	MemLimitMB int `json:"mem_limit_mb" env:"MEM_LIMIT_MB"`
	// DebugAddr, if set, is where a service serves net/http/pprof (loopback only: it is
	// for a developer; `make bench` gives each service one to take profiles during a run).
	DebugAddr string `json:"debug_addr" env:"DEBUG_ADDR"`

	// Abuse control on POST /order/sell, shared by every order-web through Redis: buys per
	// second per user and per client IP (0: no limit; a burst of one second's worth is
	// allowed), under keys starting with RateKeyPrefix. Clients in RateIPExempt (comma-
	// separated CIDRs; by default loopback, that is a proxy or tool on the same host) have
	// no per-IP limit. ClientIPHeader names a header set by a trusted proxy (for example
	// X-Forwarded-For, whose last address is used) to take the client IP from instead of
	// the connection's; leave it empty unless such a proxy is in front. InflightTTL bounds
	// how long a buy in flight blocks the same user's presses for the same commodity once
	// its web instance has died (a live instance renews its marks every third of it).
	RateUserPerSec int      `json:"rate_user_per_sec" env:"RATE_USER_PER_SEC"`
	RateIPPerSec   int      `json:"rate_ip_per_sec" env:"RATE_IP_PER_SEC"`
	RateKeyPrefix  string   `json:"rate_key_prefix" env:"RATE_KEY_PREFIX"`
	RateIPExempt   string   `json:"rate_ip_exempt" env:"RATE_IP_EXEMPT"`
	ClientIPHeader string   `json:"client_ip_header" env:"CLIENT_IP_HEADER"`
	InflightTTL    Duration `json:"inflight_ttl" env:"INFLIGHT_TTL"`

	// Tickets, for the commodities that require one (ticketRequired): TicketTTL is how long
	// a ticket from GET /order/ticket admits its buyer's press; TicketPowBits, above 0, is
	// how many leading zero bits of SHA-256 its proof of work needs (0 to 32; each bit
	// doubles the work: 16 is some 65,000 hashes).
	TicketTTL     Duration `json:"ticket_ttl" env:"TICKET_TTL"`
	TicketPowBits int      `json:"ticket_pow_bits" env:"TICKET_POW_BITS"`

	// The pages. DevLogin lets order-web's buyer page mint a token for any user name
	// (development only: refused without SECBUY_DEV=1; `make run` sets both). CORSOrigins (comma-separated) are the page
	// origins payment-web answers from another origin: the buyer page pays there.
	// PagePaymentURL is payment-web's address as the buyer page's browser reaches it;
	// empty means the page's own host on port 8089.
	DevLogin       bool   `json:"dev_login" env:"DEV_LOGIN"`
	CORSOrigins    string `json:"cors_origins" env:"CORS_ORIGINS"`
	PagePaymentURL string `json:"page_payment_url" env:"PAGE_PAYMENT_URL"`

	// Dev (SECBUY_DEV=1, from the environment only) is development mode: the settings of
	// dev.json (a published auth secret and admin key) apply before the JSON file and the
	// environment, and SECBUY_DEV_LOGIN may be on. Without it AuthSecret and AdminKey
	// must be set, each at least MinSecretBytes long, or no service starts.
	Dev bool `json:"-" env:"DEV"`

	// Tokens of an identity provider (see auth.Options), besides HS256 with AuthSecret:
	// RS256, ES256 or EdDSA tokens checked with the keys of the JWKS at JWKSURL (by kid)
	// or the PEM public key in JWTPublicKeyFile. JWTIssuer and JWTAudience, if set, must
	// match the token's iss and aud; JWTLeeway is the clock skew allowed on exp and nbf.
	// JWTHS256 says whether HS256 tokens of AuthSecret are still accepted (set it false in
	// production once an identity provider signs the tokens). An unknown kid fetches the
	// JWKS again at most once per JWKSMinRefresh; a set older than JWKSMaxAge is fetched
	// again in the background; a fetch takes at most JWKSTimeout.
	JWKSURL          string   `json:"jwks_url" env:"JWKS_URL"`
	JWTPublicKeyFile string   `json:"jwt_public_key_file" env:"JWT_PUBLIC_KEY_FILE"`
	JWTIssuer        string   `json:"jwt_issuer" env:"JWT_ISSUER"`
	JWTAudience      string   `json:"jwt_audience" env:"JWT_AUDIENCE"`
	JWTLeeway        Duration `json:"jwt_leeway" env:"JWT_LEEWAY"`
	JWTHS256         bool     `json:"jwt_hs256" env:"JWT_HS256"`
	JWKSMinRefresh   Duration `json:"jwks_min_refresh" env:"JWKS_MIN_REFRESH"`
	JWKSMaxAge       Duration `json:"jwks_max_age" env:"JWKS_MAX_AGE"`
	JWKSTimeout      Duration `json:"jwks_timeout" env:"JWKS_TIMEOUT"`

	// Credentials and TLS of the servers (basic/connect applies them to every connection).
	// NATS: one of user and password, a token, an nkey seed file or a creds file (a JWT and
	// its seed); a CA file (or a tls:// NATS_URL) makes the connections TLS, and a client
	// certificate and key are sent if given. Redis: the ACL user (empty: the default user,
	// as with requirepass) and password; RedisTLS (or a CA or client certificate file)
	// makes the connections TLS. Postgres takes them in DATABASE_URL (password, sslmode,
	// sslrootcert...), or from the standard PGPASSWORD and PGPASSFILE.
	NATSUser      string `json:"nats_user" env:"NATS_USER"`
	NATSPassword  string `json:"nats_password" env:"NATS_PASSWORD"`
	NATSToken     string `json:"nats_token" env:"NATS_TOKEN"`
	NATSNKeyFile  string `json:"nats_nkey_file" env:"NATS_NKEY_FILE"`
	NATSCredsFile string `json:"nats_creds_file" env:"NATS_CREDS_FILE"`
	NATSCAFile    string `json:"nats_ca_file" env:"NATS_CA_FILE"`
	NATSCertFile  string `json:"nats_cert_file" env:"NATS_CERT_FILE"`
	NATSKeyFile   string `json:"nats_key_file" env:"NATS_KEY_FILE"`
	RedisUsername string `json:"redis_username" env:"REDIS_USERNAME"`
	RedisPassword string `json:"redis_password" env:"REDIS_PASSWORD"`
	RedisTLS      bool   `json:"redis_tls" env:"REDIS_TLS"`
	RedisCAFile   string `json:"redis_ca_file" env:"REDIS_CA_FILE"`
	RedisCertFile string `json:"redis_cert_file" env:"REDIS_CERT_FILE"`
	RedisKeyFile  string `json:"redis_key_file" env:"REDIS_KEY_FILE"`
}

// MinSecretBytes is the least length of SECBUY_AUTH_SECRET and SECBUY_ADMIN_KEY (an HS256
// key of 256 bits, RFC 7518 3.2), in development mode too.
const MinSecretBytes = 32

// devDefaults are the development settings, applied only with SECBUY_DEV=1.
//
//go:embed dev.json
var devDefaults []byte

// Duration is a time.Duration written as "3s" in JSON and in the environment.
type Duration struct{ time.Duration }

// UnmarshalText reads a Go duration ("250ms", "15m").
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Others are the SECBUY_ variables that are not settings of the services but that the
// tests and scripts read (see the README); a service lets them be.
var Others = []string{
	"SECBUY_CONFIG",      // the JSON file read by Load
	"SECBUY_TEST_PG",     // basic/dbtest: the Postgres server of the tests
	"SECBUY_CHAOS_SEED",  // test/chaos_test.go: replays a seed
	"SECBUY_FAULT_DELAY", // basic/svc/fault_inject.go: fault injection, in test builds only
	"SECBUY_FAULT_DELAY_FROM",
	"SECBUY_FAULT_DELAY_UNTIL",
	"SECBUY_UP_WAIT",       // scripts/suite.sh
	"SECBUY_SERVICES_WAIT", // scripts/services.sh
	"SECBUY_HOST_PG_PORT",  // docker-compose.yml
	"SECBUY_HOST_REDIS_PORT",
	"SECBUY_HOST_NATS_PORT",
}

// Load returns the defaults, overlaid by the file named in SECBUY_CONFIG (if set) and then
// by SECBUY_* environment variables, and checks the result.
func Load() (Config, error) {
	return load(os.Environ())
}

func load(environ []string) (Config, error) {
	var c Config
	if err := decodeJSON(defaults, &c); err != nil {
		return c, fmt.Errorf("config defaults: %w", err)
	}
	vars := env.ToMap(environ)
	if dev, _ := strconv.ParseBool(vars["SECBUY_DEV"]); dev { // a bad value: applyEnv names it
		if err := decodeJSON(devDefaults, &c); err != nil {
			return c, fmt.Errorf("config dev defaults: %w", err)
		}
	}
	if path := vars["SECBUY_CONFIG"]; path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		if err := decodeJSON(b, &c); err != nil {
			return c, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := applyEnv(&c, vars); err != nil {
		return c, err
	}
	return c, c.check()
}

// decodeJSON reads b into c, refusing keys that name no setting.
func decodeJSON(b []byte, c *Config) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("more than one JSON value")
	}
	return nil
}

// applyEnv sets every field whose variable is in vars, and refuses SECBUY_ variables that
// are neither a setting nor one of Others: a misspelt name must not be silently ignored.
func applyEnv(c *Config, vars map[string]string) error {
	byField := variables()
	known := map[string]bool{}
	for _, v := range byField {
		known[v] = true
	}
	var unknown []string
	for k := range vars {
		if strings.HasPrefix(k, Prefix) && !known[k] && !slices.Contains(Others, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown)
		return fmt.Errorf("config: unknown setting %s (the settings are listed in basic/config/config.go)", strings.Join(unknown, ", "))
	}
	if err := env.ParseWithOptions(c, env.Options{Prefix: Prefix, Environment: vars}); err != nil {
		return parseError(err, byField, vars)
	}
	// The library takes an empty value for an unset one; here it empties the setting.
	v := reflect.ValueOf(c).Elem()
	for field, name := range byField {
		if val, set := vars[name]; set && val == "" {
			f := v.FieldByName(field)
			if f.Kind() != reflect.String {
				return fmt.Errorf("config: %s is empty", name)
			}
			f.SetString("")
		}
	}
	return nil
}

// parseError names the variable behind each of the library's errors.
func parseError(err error, byField, vars map[string]string) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return fmt.Errorf("config: %w", err)
	}
	// The library names the Go field; say which variable held the bad value.
	msgs := make([]string, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if !errors.As(e, &pe) {
			msgs = append(msgs, e.Error())
			continue
		}
		name := byField[pe.Name]
		msgs = append(msgs, fmt.Sprintf("%s=%q: %v", name, vars[name], pe.Err))
	}
	return fmt.Errorf("config: %s", strings.Join(msgs, "; "))
}

// variables maps each field of Config to its environment variable.
func variables() map[string]string {
	t := reflect.TypeFor[Config]()
	m := make(map[string]string, t.NumField())
	for i := range t.NumField() {
		m[t.Field(i).Name] = Prefix + t.Field(i).Tag.Get("env")
	}
	return m
}

// check refuses values no service can run with.
func (c Config) check() error {
	var errs []error
	for _, s := range []struct{ name, v string }{
		{"SECBUY_DATABASE_URL", c.DatabaseURL},
		{"SECBUY_NATS_URL", c.NATSURL}, {"SECBUY_REDIS_ADDR", c.RedisAddr},
	} {
		if s.v == "" {
			errs = append(errs, fmt.Errorf("%s is empty", s.name))
		}
	}
	for _, n := range []struct {
		name   string
		v, min int64
	}{
		{"SECBUY_DB_MAX_CONNS", int64(c.DBMaxConns), 1}, {"SECBUY_MAX_INFLIGHT", int64(c.MaxInflight), 1},
		{"SECBUY_TOKEN_CACHE_SIZE", int64(c.TokenCacheSize), 1}, {"SECBUY_MAX_BODY_BYTES", c.MaxBodyBytes, 1},
		{"SECBUY_RATE_USER_PER_SEC", int64(c.RateUserPerSec), 0}, {"SECBUY_RATE_IP_PER_SEC", int64(c.RateIPPerSec), 0},
		{"SECBUY_MEM_LIMIT_MB", int64(c.MemLimitMB), 0}, {"SECBUY_GC_PERCENT", int64(c.GCPercent), -1},
		{"SECBUY_NATS_REPLICAS", int64(c.NATSReplicas), 1}, {"SECBUY_STOCK_BUCKETS", int64(c.StockBuckets), 1},
		{"SECBUY_TICKET_POW_BITS", int64(c.TicketPowBits), 0},
	} {
		if n.v < n.min {
			errs = append(errs, fmt.Errorf("%s must be at least %d", n.name, n.min))
		}
	}
	for _, d := range []struct {
		name string
		v    Duration
	}{
		{"SECBUY_DB_TIMEOUT", c.DBTimeout}, {"SECBUY_RPC_TIMEOUT", c.RPCTimeout},
		{"SECBUY_HTTP_READ_TIMEOUT", c.HTTPReadTimeout}, {"SECBUY_HTTP_WRITE_TIMEOUT", c.HTTPWriteTimeout},
		{"SECBUY_RECOVER_AFTER", c.RecoverAfter}, {"SECBUY_RECOVER_EVERY", c.RecoverEvery},
		{"SECBUY_PAY_TIMEOUT", c.PayTimeout}, {"SECBUY_EXPIRE_EVERY", c.ExpireEvery},
		{"SECBUY_QUEUE_WAIT", c.QueueWait}, {"SECBUY_INFLIGHT_TTL", c.InflightTTL},
		{"SECBUY_TICKET_TTL", c.TicketTTL},
		{"SECBUY_REGISTER_INTERVAL", c.RegisterInterval}, {"SECBUY_REGISTER_TTL", c.RegisterTTL},
		{"SECBUY_OUTBOX_RETENTION", c.OutboxRetention},
	} {
		if d.v.Duration <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", d.name))
		}
	}
	if c.TicketPowBits > 32 {
		errs = append(errs, errors.New("SECBUY_TICKET_POW_BITS must be at most 32"))
	}
	// Every service needs both secrets, though each uses one or none: one rule, checked
	// here, and a deployment that sets them once for all (as docker-compose.yml does)
	// cannot start half its services.
	for _, s := range []struct{ name, v string }{
		{"SECBUY_AUTH_SECRET", c.AuthSecret}, {"SECBUY_ADMIN_KEY", c.AdminKey},
	} {
		switch {
		case s.v == "":
			errs = append(errs, fmt.Errorf("%s is not set: give it a random secret of at least %d bytes (or set SECBUY_DEV=1 for the development defaults)", s.name, MinSecretBytes))
		case len(s.v) < MinSecretBytes:
			errs = append(errs, fmt.Errorf("%s is %d bytes: it must be at least %d", s.name, len(s.v), MinSecretBytes))
		}
	}
	if c.DevLogin && !c.Dev {
		errs = append(errs, errors.New("SECBUY_DEV_LOGIN needs SECBUY_DEV=1: it lets anyone sign in as any buyer"))
	}
	if c.StockBuckets > 64 {
		errs = append(errs, errors.New("SECBUY_STOCK_BUCKETS must be at most 64"))
	}
	if c.StopDelay.Duration < 0 {
		errs = append(errs, errors.New("SECBUY_STOP_DELAY must not be negative"))
	}
	if c.RegisterTTL.Duration < 2*c.RegisterInterval.Duration {
		errs = append(errs, errors.New("SECBUY_REGISTER_TTL must be at least twice SECBUY_REGISTER_INTERVAL"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}
