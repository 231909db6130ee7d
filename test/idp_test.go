package test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"secbuy/basic/auth"
	"secbuy/test/load"
	"secbuy/test/suite"
)

// TestIdPKeyRotation runs the suite against an identity provider's JWKS (served by this
// test) with HS256 switched off, as in production: buyers buy with tokens of key A; the
// provider publishes key B beside A, and buyers buy with tokens of both; then it
// publishes B alone, A's tokens (cached ones too) stop verifying, and buyers buy with B
// until the commodity is sold out. Afterwards: no unit sold twice, one order per buyer,
// every order told is there, and payment-web takes B's tokens too.
func TestIdPKeyRotation(t *testing.T) {
	keyA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keyB, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var set atomic.Pointer[[]byte]
	publish := func(keys ...crypto.Signer) {
		var pubs []crypto.PublicKey
		for _, k := range keys {
			pubs = append(pubs, k.Public())
		}
		b, err := auth.PublicJWKS(pubs...)
		if err != nil {
			t.Fatal(err)
		}
		set.Store(&b)
	}
	publish(keyA)
	idp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*set.Load())
	}))
	defer idp.Close()
	const iss, aud = "https://idp.test", "secbuy-shop"
	mint := func(key crypto.Signer) func(int64) (string, error) {
		return func(user int64) (string, error) {
			now := time.Now()
			return auth.Sign(key, jwt.MapClaims{"sub": strconv.FormatInt(user, 10), "iss": iss, "aud": aud,
				"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
		}
	}

	s := suite.New(t, []string{"SECBUY_RECOVER_AFTER=5s", "SECBUY_RECOVER_EVERY=1s",
		fmt.Sprintf("SECBUY_RATE_KEY_PREFIX=secbuy-test:%d:%s:", os.Getpid(), t.Name()),
		"SECBUY_JWKS_URL=" + idp.URL + "/.well-known/jwks.json", "SECBUY_JWT_ISSUER=" + iss, "SECBUY_JWT_AUDIENCE=" + aud,
		"SECBUY_JWT_HS256=false", "SECBUY_JWKS_MIN_REFRESH=200ms", "SECBUY_JWKS_MAX_AGE=1s"})
	cfg := load.Config{
		StockURL: s.URL("stock-web"), OrderURL: s.URL("order-web"), PaymentURL: s.URL("payment-web"),
		AdminKey: suite.AdminKey, NATSURL: s.NATSURL, UserBase: userBase.Add(1_000_000), Settle: 30 * time.Second,
		Conns: 32, Mint: mint(keyA),
	}
	waitReady(t, s, cfg)
	c := load.Client(4)
	// refusal is the reason and cause of a GET of route with a token (200: none).
	refusal := func(url, tok string) (int, string) {
		var r struct {
			Error struct{ Reason, Cause string } `json:"error"`
		}
		code, err := load.Do(c, "GET", url, tok, nil, &r)
		if err != nil {
			return 0, err.Error()
		}
		return code, r.Error.Reason + " " + r.Error.Cause
	}
	hs := s.Token(cfg.UserBase + 999_999)
	if code, why := refusal(cfg.OrderURL+"/order/list", hs); code != 401 || why != "INVALID_TOKEN TOKEN_ALG_NOT_ALLOWED" {
		t.Errorf("an HS256 token with SECBUY_JWT_HS256=false: %d %s; want 401 INVALID_TOKEN TOKEN_ALG_NOT_ALLOWED", code, why)
	}

	const units = 350 // the first two phases buy 300, the last the rest
	id, err := createCommodity(cfg, c, units)
	if err != nil {
		t.Fatal(err)
	}
	var all []load.Reply
	phase := func(name string, buyers int, mint func(int64) (string, error)) load.Result {
		t.Helper()
		pc := cfg
		pc.Commodity, pc.Buyers, pc.UserBase, pc.Mint = id, buyers, cfg.UserBase+int64(len(all)), mint
		res, err := load.Burst(context.Background(), load.Client(pc.Conns), pc)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: %s", name, res.Summary())
		for _, r := range res.Replies {
			if r.Status == 401 {
				t.Errorf("%s: user %d refused: %d %s", name, r.User, r.Status, r.Reason)
			}
		}
		all = append(all, res.Replies...)
		return res
	}

	first := phase("key A", 150, mint(keyA))
	cachedA, err := mint(keyA)(first.Replies[0].User)
	if err != nil {
		t.Fatal(err)
	}
	if code, why := refusal(cfg.OrderURL+"/order/list", cachedA); code != 200 {
		t.Fatalf("a key A token before the rotation: %d %s", code, why)
	}

	publish(keyA, keyB) // B's first token names a kid order-web does not know: it fetches the set
	phase("keys A and B", 150, func(user int64) (string, error) {
		if user%2 == 0 {
			return mint(keyA)(user)
		}
		return mint(keyB)(user)
	})

	publish(keyB) // A is gone once order-web fetches the set again (SECBUY_JWKS_MAX_AGE)
	waitRefused := func(name, url string, mintTok func() (string, error)) {
		t.Helper()
		err := suite.Eventually(10*time.Second, func() error {
			tok, err := mintTok()
			if err != nil {
				return err
			}
			if code, why := refusal(url, tok); code != 401 || why != "INVALID_TOKEN TOKEN_UNKNOWN_KEY" {
				return fmt.Errorf("%s: %d %s; want 401 INVALID_TOKEN TOKEN_UNKNOWN_KEY", name, code, why)
			}
			return nil
		})
		if err != nil {
			t.Error(err)
		}
	}
	waitRefused("a new key A token", cfg.OrderURL+"/order/list", func() (string, error) { return mint(keyA)(cfg.UserBase + 999_998) })
	waitRefused("a cached key A token", cfg.OrderURL+"/order/list", func() (string, error) { return cachedA, nil })
	last := phase("key B", 200, mint(keyB))

	cfg.Commodity, cfg.Mint = id, mint(keyB) // Check resends and follows with B's tokens
	au, violations, err := load.Check(context.Background(), load.Client(32), cfg, load.NewAuditor(cfg.NATSURL),
		load.Result{Commodity: id, Replies: all})
	if err != nil {
		t.Fatal(err)
	}
	t.Log("audit:", au)
	for _, v := range violations {
		t.Error("invariant broken:", v)
	}
	if au.Sale != units || au.Live != units || au.TwoLive != 0 {
		t.Errorf("audit %v; want %d units sold as %d orders, none two to a user", au, units, units)
	}
	if n := last.Counts()["sold out"]; n == 0 {
		t.Errorf("the last phase was never told sold out: %v", last.Counts())
	}

	// payment-web checks tokens the same way: B's verify, A's no longer.
	var paid load.Reply
	for _, r := range last.Replies {
		if r.Reason == "ok" {
			paid = r
			break
		}
	}
	if paid.OrderID == 0 {
		t.Fatalf("no order in the last phase: %v", last.Counts())
	}
	payURL := fmt.Sprintf("%s/payment/get?id=%d", cfg.PaymentURL, paid.OrderID)
	err = suite.Eventually(10*time.Second, func() error {
		tok, err := mint(keyB)(paid.User)
		if err != nil {
			return err
		}
		if code, why := refusal(payURL, tok); code != 200 {
			return fmt.Errorf("payment-web with a key B token: %d %s", code, why)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
	waitRefused("payment-web with a key A token", payURL, func() (string, error) { return mint(keyA)(paid.User) })
}
