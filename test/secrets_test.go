package test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"secbuy/basic/auth"
	"secbuy/test/suite"
)

// A service has no secret unless one is given or development mode is asked for: without
// SECBUY_DEV=1 and SECBUY_AUTH_SECRET the real binary exits non-zero within a second,
// naming the variable; a secret of 31 bytes is refused; with SECBUY_DEV=1 alone it starts,
// with the development secret.
func TestSecretsRequired(t *testing.T) {
	t.Parallel()
	key := "SECBUY_ADMIN_KEY=" + strings.Repeat("k", 32)
	for _, svc := range []string{"order-web", "stock-srv"} {
		bin := suite.Binary(t, svc)
		for _, tc := range []struct {
			name string
			env  []string
			want string
		}{
			{"no secret", nil, "SECBUY_AUTH_SECRET is not set"},
			{"no secret, dev off", []string{"SECBUY_DEV=0", key}, "SECBUY_AUTH_SECRET is not set"},
			{"31 bytes", []string{"SECBUY_AUTH_SECRET=" + strings.Repeat("s", 31), key}, "SECBUY_AUTH_SECRET is 31 bytes: it must be at least 32"},
			{"dev login outside dev", []string{"SECBUY_AUTH_SECRET=" + strings.Repeat("s", 32), key, "SECBUY_DEV_LOGIN=1"}, "SECBUY_DEV_LOGIN needs SECBUY_DEV=1"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			cmd := exec.CommandContext(ctx, bin)
			cmd.Env = append(withoutSecbuy(os.Environ()), tc.env...)
			var stderr strings.Builder
			cmd.Stderr = &stderr
			start := time.Now()
			err := cmd.Run()
			took := time.Since(start)
			cancel()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() <= 0 {
				t.Errorf("%s, %s: exit %v, want a non-zero status", svc, tc.name, err)
			}
			if took > time.Second {
				t.Errorf("%s, %s: exited after %v, want within 1 s", svc, tc.name, took)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("%s, %s: stderr %q, want it to say %q", svc, tc.name, stderr.String(), tc.want)
			}
		}
	}

	// Development mode alone: the suite's order-web restarted without its secrets takes the
	// development ones, and a token signed with the published development secret is good.
	s := suite.New(t, nil, "order-web")
	s.Stop("order-web")
	var env []string
	for _, kv := range s.Env {
		if !strings.HasPrefix(kv, "SECBUY_AUTH_SECRET=") && !strings.HasPrefix(kv, "SECBUY_ADMIN_KEY=") {
			env = append(env, kv)
		}
	}
	s.Env = env
	s.Start("order-web")
	s.WaitHTTP("order-web")
	tok, err := auth.Mint("secbuy-dev-secret-not-for-production", 7, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		token string
		want  func(int) bool
		what  string
	}{
		{tok, func(code int) bool { return code != http.StatusUnauthorized }, "the development secret's token accepted"},
		{s.Token(7), func(code int) bool { return code == http.StatusUnauthorized }, "the suite secret's token refused"},
	} {
		req, _ := http.NewRequest(http.MethodGet, s.URL("order-web")+"/order/get?id=1", nil)
		req.Header.Set("Authorization", "Bearer "+c.token)
		rsp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rsp.Body.Close()
		if !c.want(rsp.StatusCode) {
			t.Errorf("GET /order/get: %d; want %s", rsp.StatusCode, c.what)
		}
	}
}

// withoutSecbuy is environ without its SECBUY_ variables.
func withoutSecbuy(environ []string) []string {
	var out []string
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "SECBUY_") {
			out = append(out, kv)
		}
	}
	return out
}
