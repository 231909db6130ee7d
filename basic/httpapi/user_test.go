package httpapi

import (
	"encoding/json"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"secbuy/basic/auth"
	"secbuy/proto/outcome"
)

// A bad token is 401 INVALID_TOKEN (what clients branch on to sign in again), with a
// cause of its own and the cause's words; no token is UNAUTHENTICATED, with no cause.
func TestUserRefusals(t *testing.T) {
	t.Parallel()
	const secret = "user-test-secret"
	v := auth.NewVerifier(secret, 10)
	hs := func(c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString([]byte(secret))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"sub": "1", "exp": time.Now().Add(time.Hour).Unix()}).
		SignedString(jwt.UnsafeAllowNoneSignatureType)
	forged, _ := auth.Mint("another-secret", 1, time.Hour)
	hour := time.Now().Add(time.Hour).Unix()
	for _, c := range []struct {
		name, header, reason, cause, detail, zh string
	}{
		{"no token", "", "UNAUTHENTICATED", "", "missing bearer token", "缺少登录凭证"},
		{"malformed", "Bearer x.y.z", "INVALID_TOKEN", "TOKEN_MALFORMED", "malformed token", "登录凭证格式错误"},
		{"alg none", "Bearer " + none, "INVALID_TOKEN", "TOKEN_UNSIGNED", "unsigned token (alg none)", "登录凭证未签名"},
		{"forged", "Bearer " + forged, "INVALID_TOKEN", "TOKEN_BAD_SIGNATURE", "bad token signature", "登录凭证签名无效"},
		{"no exp", "Bearer " + hs(jwt.MapClaims{"sub": "1"}), "INVALID_TOKEN", "TOKEN_NO_EXPIRY", "token has no expiry (exp)", "登录凭证缺少过期时间"},
		{"expired", "Bearer " + hs(jwt.MapClaims{"sub": "1", "exp": time.Now().Add(-time.Minute).Unix()}), "INVALID_TOKEN", "TOKEN_EXPIRED", "token expired", "登录凭证已过期"},
		{"nbf", "Bearer " + hs(jwt.MapClaims{"sub": "1", "exp": hour, "nbf": hour}), "INVALID_TOKEN", "TOKEN_NOT_YET_VALID", "token not valid yet (nbf)", "登录凭证尚未生效"},
		{"RS256 without a provider", "Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIxIn0.c2ln", "INVALID_TOKEN", "TOKEN_ALG_NOT_ALLOWED", "token signing algorithm not accepted", "不接受该登录凭证的签名算法"},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, zh := range []bool{false, true} {
				r := httptest.NewRequest("POST", "/order/sell", nil)
				if c.header != "" {
					r.Header.Set("Authorization", c.header)
				}
				if zh {
					r.Header.Set("Accept-Language", "zh-CN")
				}
				_, e := User(v, r)
				if e == nil {
					t.Fatal("User accepted the token")
				}
				w := httptest.NewRecorder()
				Fail(w, r, e)
				var body struct {
					Error map[string]any `json:"error"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
					t.Fatal(err)
				}
				got := body.Error
				if w.Code != 401 || got["code"] != 401.0 || got["reason"] != c.reason || got["detail"] != c.detail {
					t.Errorf("%d %v; want 401 %s %q", w.Code, got, c.reason, c.detail)
				}
				if cause, _ := got["cause"].(string); cause != c.cause {
					t.Errorf("cause %q, want %q", cause, c.cause)
				}
				if want := map[bool]string{true: c.zh}[zh]; got["message"] != nil && got["message"] != want || got["message"] == nil && want != "" {
					t.Errorf("message %v, want %q", got["message"], want)
				}
			}
		})
	}
}

// Each auth error that says why a token is bad has a cause of its own.
func TestTokenCausesDistinct(t *testing.T) {
	t.Parallel()
	seen := map[outcome.Reason]bool{}
	for _, c := range tokenCauses {
		if seen[c.Reason] || c.Reason.Status() != 401 {
			t.Errorf("%v: a cause twice, or not 401", c.Reason)
		}
		seen[c.Reason] = true
	}
}
