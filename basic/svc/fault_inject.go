//go:build faultinject

package svc

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"go-micro.dev/v6/server"
)

// Fault injection, for the chaos tests only: it is compiled in only with the build tag
// faultinject, which the whole-suite tests build their binaries with (test/suite); the
// binaries of `make build`, `make up` and the Dockerfile have none of it. Even then,
// without these variables no wrapper is installed.
//
//	SECBUY_FAULT_DELAY="StockService.SellBatch=4s[,Endpoint=duration...]"
//	SECBUY_FAULT_DELAY_FROM=<unix seconds, fractions allowed>   (optional: from when)
//	SECBUY_FAULT_DELAY_UNTIL=<unix seconds, fractions allowed>  (optional: until when)
//
// A call of a named endpoint that arrives inside the window is run at once, then its answer
// is held back for the duration (or until the caller has gone): the work is done but the
// answer is late, the hard case for a caller that must not have it done twice. The
// variables are read once, when the server is built.
const (
	EnvFaultDelay      = "SECBUY_FAULT_DELAY"
	EnvFaultDelayFrom  = "SECBUY_FAULT_DELAY_FROM"
	EnvFaultDelayUntil = "SECBUY_FAULT_DELAY_UNTIL"
)

// faultDelay is a parsed SECBUY_FAULT_DELAY setting.
type faultDelay struct {
	delays      map[string]time.Duration // endpoint ("Service.Method") → delay
	from, until time.Time                // zero: open
}

// parseFaultDelay reads the setting from getenv; ok is false when it is not set.
func parseFaultDelay(getenv func(string) string) (f faultDelay, ok bool, err error) {
	spec := strings.TrimSpace(getenv(EnvFaultDelay))
	if spec == "" {
		return f, false, nil
	}
	f.delays = map[string]time.Duration{}
	for _, part := range strings.Split(spec, ",") {
		ep, d, found := strings.Cut(strings.TrimSpace(part), "=")
		if !found || strings.TrimSpace(ep) == "" {
			return f, false, fmt.Errorf("%s: %q is not Endpoint=duration", EnvFaultDelay, part)
		}
		dur, err := time.ParseDuration(strings.TrimSpace(d))
		if err != nil || dur <= 0 {
			return f, false, fmt.Errorf("%s: %q: want a positive duration", EnvFaultDelay, part)
		}
		f.delays[strings.TrimSpace(ep)] = dur
	}
	for _, w := range []struct {
		env string
		to  *time.Time
	}{{EnvFaultDelayFrom, &f.from}, {EnvFaultDelayUntil, &f.until}} {
		s := strings.TrimSpace(getenv(w.env))
		if s == "" {
			continue
		}
		sec, err := strconv.ParseFloat(s, 64)
		if err != nil || sec <= 0 || math.IsInf(sec, 0) {
			return f, false, fmt.Errorf("%s: %q: want unix seconds", w.env, s)
		}
		whole, frac := math.Modf(sec)
		*w.to = time.Unix(int64(whole), int64(frac*1e9))
	}
	return f, true, nil
}

// active reports the delay for endpoint at time now (0: none).
func (f faultDelay) active(endpoint string, now time.Time) time.Duration {
	d := f.delays[endpoint]
	if d == 0 || (!f.from.IsZero() && now.Before(f.from)) || (!f.until.IsZero() && !now.Before(f.until)) {
		return 0
	}
	return d
}

// wrapper returns the HandlerWrapper that applies f.
func (f faultDelay) wrapper() server.HandlerWrapper {
	return func(next server.HandlerFunc) server.HandlerFunc {
		return func(ctx context.Context, req server.Request, rsp interface{}) error {
			d := f.active(req.Endpoint(), time.Now())
			err := next(ctx, req, rsp)
			if d > 0 {
				t := time.NewTimer(d)
				select {
				case <-t.C:
				case <-ctx.Done():
					t.Stop()
				}
			}
			return err
		}
	}
}

// faultOptions returns the server options that install the fault injection configured in
// the environment: none when it is not configured. A setting that does not parse is
// reported and ignored (it is a test's mistake, and must never take a service down).
func faultOptions() []server.Option {
	f, ok, err := parseFaultDelay(os.Getenv)
	if err != nil {
		slog.Error("fault injection setting ignored", "err", err)
		return nil
	}
	if !ok {
		return nil
	}
	slog.Warn("FAULT INJECTION ENABLED: answers are delayed (tests only)", "delay", os.Getenv(EnvFaultDelay),
		"from", os.Getenv(EnvFaultDelayFrom), "until", os.Getenv(EnvFaultDelayUntil))
	return []server.Option{server.WrapHandler(f.wrapper())}
}
