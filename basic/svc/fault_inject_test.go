//go:build faultinject

package svc

import (
	"testing"
	"time"
)

func TestParseFaultDelay(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		EnvFaultDelay:      "StockService.SellBatch=2500ms, OrderService.CreateOrders=1s",
		EnvFaultDelayFrom:  "1000.5",
		EnvFaultDelayUntil: "2000",
	}
	f, ok, err := parseFaultDelay(func(k string) string { return env[k] })
	if err != nil || !ok {
		t.Fatalf("parse: %v, %v", ok, err)
	}
	at := func(sec float64) time.Time { return time.Unix(0, int64(sec*1e9)) }
	for _, c := range []struct {
		endpoint string
		at       float64
		want     time.Duration
	}{
		{"StockService.SellBatch", 1500, 2500 * time.Millisecond},
		{"OrderService.CreateOrders", 1000.5, time.Second},
		{"StockService.SellBatch", 1000, 0},
		{"StockService.SellBatch", 2000, 0},
		{"StockService.Sell", 1500, 0},
	} {
		if got := f.active(c.endpoint, at(c.at)); got != c.want {
			t.Errorf("%s at %v: delay %v, want %v", c.endpoint, c.at, got, c.want)
		}
	}
	for _, bad := range []string{"SellBatch", "X=soon", "X=-1s", "=1s"} {
		if _, _, err := parseFaultDelay(func(k string) string {
			if k == EnvFaultDelay {
				return bad
			}
			return ""
		}); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
