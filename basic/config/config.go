// Package config loads the settings every secbuy service shares: built-in defaults for a
// local machine, then an optional JSON file, then environment variables, so every address,
// port and secret can be overridden without a rebuild.
package config

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
)

//go:embed defaults.json
var defaults []byte

// Config is the whole configuration. Each field's env variable is SECBUY_ plus its json
// name in upper case, for example SECBUY_DATABASE_URL or SECBUY_ORDER_WEB_ADDR.
type Config struct {
	DatabaseURL string   `json:"database_url"`
	DBMaxConns  int      `json:"db_max_conns"`
	DBTimeout   Duration `json:"db_timeout"`
	NATSURL     string   `json:"nats_url"`
	RedisAddr   string   `json:"redis_addr"`
	AuthSecret  string   `json:"auth_secret"`
	AdminKey    string   `json:"admin_key"`
	// The listen addresses. Loopback by default: a service registers the host it binds
	// to, and a wildcard host makes go-micro advertise eth0 instead.
	StockSrvAddr   string   `json:"stock_srv_addr"`
	OrderSrvAddr   string   `json:"order_srv_addr"`
	PaymentSrvAddr string   `json:"payment_srv_addr"`
	StockWebAddr   string   `json:"stock_web_addr"`
	OrderWebAddr   string   `json:"order_web_addr"`
	PaymentWebAddr string   `json:"payment_web_addr"`
	RPCTimeout     Duration `json:"rpc_timeout"`
	// RecoverAfter is how old a pending order must be before recovery drives it;
	// RecoverEvery is how often recovery looks.
	RecoverAfter Duration `json:"recover_after"`
	RecoverEvery Duration `json:"recover_every"`
	// PayTimeout is how long a payment may stay unpaid before it expires (its order is then
	// cancelled and its unit goes back on sale); ExpireEvery is how often payment-srv looks.
	PayTimeout   Duration `json:"pay_timeout"`
	ExpireEvery  Duration `json:"expire_every"`
	MaxBodyBytes int64    `json:"max_body_bytes"`
	// HTTPReadTimeout and HTTPWriteTimeout bound reading a request and writing its answer
	// on every web service.
	HTTPReadTimeout  Duration `json:"http_read_timeout"`
	HTTPWriteTimeout Duration `json:"http_write_timeout"`
	// MaxInflight caps each web instance's requests in flight to its RPC service; a request
	// waits up to QueueWait for a slot, then gets 503.
	MaxInflight int      `json:"max_inflight"`
	QueueWait   Duration `json:"queue_wait"`
	LogLevel    string   `json:"log_level"`

	// Abuse control on POST /order/sell, shared by every order-web through Redis: buys per
	// second per user and per client IP (0: no limit; a burst of one second's worth is
	// allowed), under keys starting with RateKeyPrefix. Clients in RateIPExempt (comma-
	// separated CIDRs; by default loopback, that is a proxy or tool on the same host) have
	// no per-IP limit. ClientIPHeader names a header set by a trusted proxy (for example
	// X-Forwarded-For, whose last address is used) to take the client IP from instead of
	// the connection's; leave it empty unless such a proxy is in front. InflightTTL bounds
	// how long a buy in flight blocks the same user's other presses for the same commodity
	// if its web instance dies before releasing it.
	RateUserPerSec int      `json:"rate_user_per_sec"`
	RateIPPerSec   int      `json:"rate_ip_per_sec"`
	RateKeyPrefix  string   `json:"rate_key_prefix"`
	RateIPExempt   string   `json:"rate_ip_exempt"`
	ClientIPHeader string   `json:"client_ip_header"`
	InflightTTL    Duration `json:"inflight_ttl"`
}

// Duration is a time.Duration written as "3s" in JSON and env.
type Duration struct{ time.Duration }

// UnmarshalJSON reads a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	d.Duration = v
	return nil
}

// Load returns the defaults, overlaid by the file named in SECBUY_CONFIG (if set) and then
// by SECBUY_* environment variables. It fails on a value that does not parse.
func Load() (Config, error) {
	var c Config
	if err := json.Unmarshal(defaults, &c); err != nil {
		return c, fmt.Errorf("config defaults: %w", err)
	}
	if path := os.Getenv("SECBUY_CONFIG"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("config file: %w", err)
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return c, fmt.Errorf("config file %s: %w", path, err)
		}
	}
	if err := applyEnv(&c); err != nil {
		return c, err
	}
	if c.AuthSecret == "" {
		return c, fmt.Errorf("config: auth_secret is empty")
	}
	if c.DBMaxConns < 1 {
		return c, fmt.Errorf("config: db_max_conns must be at least 1")
	}
	if c.HTTPReadTimeout.Duration <= 0 || c.HTTPWriteTimeout.Duration <= 0 {
		return c, fmt.Errorf("config: http_read_timeout and http_write_timeout must be positive")
	}
	return c, nil
}

func applyEnv(c *Config) error {
	v := reflect.ValueOf(c).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name := "SECBUY_" + strings.ToUpper(t.Field(i).Tag.Get("json"))
		s, ok := os.LookupEnv(name)
		if !ok {
			continue
		}
		f := v.Field(i)
		switch f.Interface().(type) {
		case string:
			f.SetString(s)
		case int, int64:
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return fmt.Errorf("config %s: %w", name, err)
			}
			f.SetInt(n)
		case Duration:
			d, err := time.ParseDuration(s)
			if err != nil {
				return fmt.Errorf("config %s: %w", name, err)
			}
			f.Set(reflect.ValueOf(Duration{d}))
		}
	}
	return nil
}
