package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// eventually waits up to timeout for cond (testutil.Eventually, which imports this package).
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(timeout); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

// The test keys, made once: an RSA key takes a moment.
var (
	keysOnce           sync.Once
	rsaA, rsaB         *rsa.PrivateKey
	ecKey              *ecdsa.PrivateKey
	edKey              ed25519.PrivateKey
	pubA, pubB, pubEC  crypto.PublicKey
	pubEd              crypto.PublicKey
	testIssuer, testAu = "https://idp.test", "secbuy"
)

func testKeys(t *testing.T) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaA, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaB, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
		pubA, pubB, pubEC, pubEd = rsaA.Public(), rsaB.Public(), ecKey.Public(), edKey.Public()
	})
}

// idp is a test identity provider's JWKS endpoint: it serves the set it is given (or a
// status, or hangs) and counts the fetches.
type idp struct {
	*httptest.Server
	body    atomic.Pointer[[]byte]
	status  atomic.Int32 // 0: 200 with body
	hang    atomic.Bool
	fetches atomic.Int32
}

func newIdP(t *testing.T, pubs ...crypto.PublicKey) *idp {
	t.Helper()
	p := &idp{}
	stop := make(chan struct{})
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		if p.hang.Load() {
			select {
			case <-stop:
			case <-r.Context().Done():
			}
			return
		}
		if s := p.status.Load(); s != 0 {
			w.WriteHeader(int(s))
			return
		}
		_, _ = w.Write(*p.body.Load())
	}))
	t.Cleanup(func() { close(stop); p.Close() })
	p.publish(t, pubs...)
	return p
}

func (p *idp) publish(t *testing.T, pubs ...crypto.PublicKey) {
	t.Helper()
	b, err := PublicJWKS(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	p.body.Store(&b)
}

// claims are a valid token's: sub user, the test issuer and audience, an hour to live.
func claims(user string) jwt.MapClaims {
	now := time.Now()
	return jwt.MapClaims{"sub": user, "iss": testIssuer, "aud": testAu, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
}

func signed(t *testing.T, key crypto.Signer, c jwt.MapClaims) string {
	t.Helper()
	tok, err := Sign(key, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func kid(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	k, err := KeyID(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// options are a Verifier's of the provider at url, HS256 with secret too.
func options(url string) Options {
	return Options{Secret: secret, HS256: true, JWKSURL: url, Issuer: testIssuer, Audience: testAu,
		Leeway: 30 * time.Second, JWKSMinRefresh: time.Hour, JWKSMaxAge: time.Hour, JWKSTimeout: time.Second, CacheSize: 100}
}

func newVerifier(t *testing.T, o Options) *Verifier {
	t.Helper()
	v, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func writePEM(t *testing.T, typ string, der []byte) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func pkix(t *testing.T, pub crypto.PublicKey) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

// RS256, ES256 and EdDSA tokens verify against a JWKS URL and against a PEM key file.
func TestProviderTokens(t *testing.T) {
	t.Parallel()
	testKeys(t)
	p := newIdP(t, pubA, pubEC, pubEd)
	viaJWKS := newVerifier(t, options(p.URL))
	for name, key := range map[string]crypto.Signer{"RS256": rsaA, "ES256": ecKey, "EdDSA": edKey} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if id, err := viaJWKS.Verify(signed(t, key, claims("42"))); err != nil || id != "42" {
				t.Errorf("JWKS: Verify = %q, %v; want 42", id, err)
			}
			o := options("")
			o.PublicKeyFile = writePEM(t, "PUBLIC KEY", pkix(t, key.Public()))
			viaPEM := newVerifier(t, o)
			if id, err := viaPEM.Verify(signed(t, key, claims("43"))); err != nil || id != "43" {
				t.Errorf("PEM: Verify = %q, %v; want 43", id, err)
			}
			// Without a kid: the key that fits.
			c := claims("44")
			tok, err := jwt.NewWithClaims(jwt.GetSigningMethod(algOf(key.Public())), c).SignedString(key)
			if err != nil {
				t.Fatal(err)
			}
			if id, err := viaJWKS.Verify(tok); err != nil || id != "44" {
				t.Errorf("JWKS, no kid: Verify = %q, %v; want 44", id, err)
			}
			if id, err := viaPEM.Verify(tok); err != nil || id != "44" {
				t.Errorf("PEM, no kid: Verify = %q, %v; want 44", id, err)
			}
		})
	}
	// A key file beside a JWKS: a token naming the file's key (auth.Sign sets its kid) is
	// checked with it, one naming a key of the set with the set.
	both := options(p.URL)
	both.PublicKeyFile = writePEM(t, "PUBLIC KEY", pkix(t, pubB))
	v := newVerifier(t, both)
	for _, c := range []struct {
		key crypto.Signer
		sub string
	}{{rsaB, "46"}, {rsaA, "47"}} {
		if id, err := v.Verify(signed(t, c.key, claims(c.sub))); err != nil || id != c.sub {
			t.Errorf("key file and JWKS: Verify = %q, %v; want %s", id, err, c.sub)
		}
	}
	// HS256 tokens of the secret still verify beside them (SECBUY_JWT_HS256=true), with no
	// iss or aud: those are the provider's, checked on its tokens only.
	hs, _ := Mint(secret, 45, time.Minute)
	o := options(p.URL)
	if o.Issuer == "" || o.Audience == "" {
		t.Fatal("options set no issuer or audience: the case below would say nothing")
	}
	if id, err := newVerifier(t, o).Verify(hs); err != nil || id != "45" {
		t.Errorf("HS256 beside the provider: Verify = %q, %v; want 45", id, err)
	}
}

// causes are the errors that say why a token is bad; each bad token is exactly one.
var causes = []error{ErrMalformed, ErrUnsigned, ErrAlgorithm, ErrKeyMismatch, ErrUnknownKey, ErrSignature,
	ErrNoExpiry, ErrExpired, ErrNotYetValid, ErrIssuer, ErrAudience}

// Every way a token is bad is refused with its own error, still an ErrBadToken.
func TestProviderRejects(t *testing.T) {
	t.Parallel()
	testKeys(t)
	p := newIdP(t, pubA, pubEC)
	v := newVerifier(t, options(p.URL))
	noHS := options(p.URL)
	noHS.HS256 = false
	vNoHS := newVerifier(t, noHS)

	with := func(change func(jwt.MapClaims)) jwt.MapClaims { c := claims("7"); change(c); return c }
	past, future := time.Now().Add(-time.Minute).Unix(), time.Now().Add(time.Minute).Unix()
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pkix(t, pubA)})
	// HS/RS confusion: an HMAC token whose secret is the RSA public key, naming its kid.
	confused := func(withKID bool) string {
		tk := jwt.NewWithClaims(jwt.SigningMethodHS256, claims("7"))
		if withKID {
			tk.Header["kid"] = kid(t, pubA)
		}
		s, err := tk.SignedString(rsaPEM)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	rsKIDofEC := func() string {
		tk := jwt.NewWithClaims(jwt.SigningMethodRS256, claims("7"))
		tk.Header["kid"] = kid(t, pubEC)
		s, err := tk.SignedString(rsaA)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	forgedSig := func() string { // signed with B, naming A's kid
		tk := jwt.NewWithClaims(jwt.SigningMethodRS256, claims("7"))
		tk.Header["kid"] = kid(t, pubA)
		s, err := tk.SignedString(rsaB)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	cases := []struct {
		name  string
		v     *Verifier
		token string
		want  error
	}{
		{"garbage", v, "not.a.token", ErrMalformed},
		{"exp a string", v, signed(t, rsaA, with(func(c jwt.MapClaims) { c["exp"] = "9999999999" })), ErrMalformed},
		{"alg none", v, sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims("7")), ErrUnsigned},
		{"HS/RS confusion, kid of the RSA key", v, confused(true), ErrKeyMismatch},
		{"HS/RS confusion, HS256 off", vNoHS, confused(false), ErrAlgorithm},
		{"HS/RS confusion, HS256 on", v, confused(false), ErrSignature},
		{"HS256 off", vNoHS, sign(t, jwt.SigningMethodHS256, []byte(secret), claims("7")), ErrAlgorithm},
		{"HS512", v, sign(t, jwt.SigningMethodHS512, []byte(secret), claims("7")), ErrAlgorithm},
		{"RS256 naming an EC key", v, rsKIDofEC(), ErrKeyMismatch},
		{"unknown kid", v, signed(t, rsaB, claims("7")), ErrUnknownKey},
		{"bad signature", v, forgedSig(), ErrSignature},
		{"no exp", v, signed(t, rsaA, with(func(c jwt.MapClaims) { delete(c, "exp") })), ErrNoExpiry},
		{"expired", v, signed(t, rsaA, with(func(c jwt.MapClaims) { c["exp"] = past })), ErrExpired},
		{"nbf in the future", v, signed(t, rsaA, with(func(c jwt.MapClaims) { c["nbf"] = future })), ErrNotYetValid},
		{"wrong issuer", v, signed(t, ecKey, with(func(c jwt.MapClaims) { c["iss"] = "https://evil.test" })), ErrIssuer},
		{"no issuer", v, signed(t, ecKey, with(func(c jwt.MapClaims) { delete(c, "iss") })), ErrIssuer},
		{"wrong audience", v, signed(t, ecKey, with(func(c jwt.MapClaims) { c["aud"] = []string{"other", "x"} })), ErrAudience},
		{"no audience", v, signed(t, ecKey, with(func(c jwt.MapClaims) { delete(c, "aud") })), ErrAudience},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			id, err := c.v.Verify(c.token)
			if !errors.Is(err, c.want) || !errors.Is(err, ErrBadToken) {
				t.Fatalf("Verify = %q, %v; want %v", id, err, c.want)
			}
			n := 0
			for _, cause := range causes {
				if errors.Is(err, cause) {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%v is %d of the causes, want exactly one", err, n)
			}
		})
	}
}

// The leeway: a token a little past its exp, or a little before its nbf, still verifies.
func TestLeeway(t *testing.T) {
	t.Parallel()
	testKeys(t)
	v := newVerifier(t, options(newIdP(t, pubA).URL))
	for name, change := range map[string]func(jwt.MapClaims){
		"exp 10s ago":  func(c jwt.MapClaims) { c["exp"] = time.Now().Add(-10 * time.Second).Unix() },
		"nbf in 10s":   func(c jwt.MapClaims) { c["nbf"] = time.Now().Add(10 * time.Second).Unix() },
		"aud in array": func(c jwt.MapClaims) { c["aud"] = []string{"other", testAu} },
	} {
		c := claims("8")
		change(c)
		if id, err := v.Verify(signed(t, rsaA, c)); err != nil || id != "8" {
			t.Errorf("%s: Verify = %q, %v; want 8", name, id, err)
		}
	}
}

// A cached provider token is trusted only until its exp (plus the leeway).
func TestProviderTokenCacheExpires(t *testing.T) {
	t.Parallel()
	testKeys(t)
	v := newVerifier(t, options(newIdP(t, pubA).URL))
	now := time.Now()
	v.now = func() time.Time { return now }
	c := claims("9")
	c["exp"] = now.Add(time.Minute).Unix()
	tok := signed(t, rsaA, c)
	if _, err := v.Verify(tok); err != nil || v.cache.Len() != 1 {
		t.Fatalf("Verify: %v, cache %d; want it verified and cached", err, v.cache.Len())
	}
	now = now.Add(time.Minute + 20*time.Second) // past exp, within the leeway
	if _, err := v.Verify(tok); err != nil {
		t.Errorf("within the leeway: %v", err)
	}
	now = now.Add(20 * time.Second)
	if _, err := v.Verify(tok); !errors.Is(err, ErrExpired) {
		t.Errorf("past exp and the leeway: %v; want ErrExpired", err)
	}
}

// Keys rotate: a new kid is fetched when a token names it; a key the provider removed
// stops verifying once the set is fetched again, cached tokens of it included.
func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	testKeys(t)
	p := newIdP(t, pubA)
	o := options(p.URL)
	o.JWKSMinRefresh, o.JWKSMaxAge = time.Millisecond, 50*time.Millisecond
	v := newVerifier(t, o)
	tokA := signed(t, rsaA, claims("1"))
	if _, err := v.Verify(tokA); err != nil {
		t.Fatalf("key A: %v", err)
	}
	p.publish(t, pubA, pubB)
	if id, err := v.Verify(signed(t, rsaB, claims("2"))); err != nil || id != "2" {
		t.Fatalf("key B, just published: Verify = %q, %v", id, err)
	}
	if _, err := v.Verify(signed(t, rsaA, claims("3"))); err != nil {
		t.Fatalf("key A, still published: %v", err)
	}
	p.publish(t, pubB)
	// The set is fetched again in the background once older than JWKSMaxAge.
	eventually(t, 5*time.Second, "key A to stop verifying", func() bool {
		_, err := v.Verify(signed(t, rsaA, claims("4")))
		return errors.Is(err, ErrUnknownKey)
	})
	if _, err := v.Verify(tokA); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("a cached token of the removed key: %v; want ErrUnknownKey", err)
	}
	if _, err := v.Verify(signed(t, rsaB, claims("5"))); err != nil {
		t.Errorf("key B after the rotation: %v", err)
	}
}

// However many tokens name unknown kids, the set is fetched at most once per
// JWKSMinRefresh.
func TestJWKSRefreshRateLimited(t *testing.T) {
	t.Parallel()
	testKeys(t)
	p := newIdP(t, pubA)
	o := options(p.URL)
	o.JWKSMinRefresh = time.Minute
	v := newVerifier(t, o)
	now := time.Now()
	var mu sync.Mutex
	v.keys.jwks.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches at start, want 1", n)
	}
	unknown := func() error {
		tk := jwt.NewWithClaims(jwt.SigningMethodRS256, claims("6"))
		tk.Header["kid"] = rand.Text()
		s, _ := tk.SignedString(rsaA)
		_, err := v.Verify(s)
		return err
	}
	var wrong atomic.Int32
	mu.Lock()
	now = now.Add(time.Minute) // the first unknown kid may fetch
	mu.Unlock()
	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 50 {
		wg.Go(func() {
			<-release
			if !errors.Is(unknown(), ErrUnknownKey) {
				wrong.Add(1)
			}
		})
	}
	close(release)
	wg.Wait()
	if n := p.fetches.Load(); n != 2 || wrong.Load() != 0 {
		t.Errorf("50 unknown kids: %d fetches in all, %d not ErrUnknownKey; want 2 and 0", n, wrong.Load())
	}
	// B is published: a token of it waits for the next allowed fetch.
	p.publish(t, pubA, pubB)
	if _, err := v.Verify(signed(t, rsaB, claims("7"))); !errors.Is(err, ErrUnknownKey) {
		t.Errorf("key B within the gap: %v; want ErrUnknownKey", err)
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if _, err := v.Verify(signed(t, rsaB, claims("7"))); err != nil || p.fetches.Load() != 3 {
		t.Errorf("key B after the gap: %v, %d fetches; want verified, 3", err, p.fetches.Load())
	}
}

// A background fetch (the set grew old) just before the provider publishes a new key does
// not hold the new key back: the first token naming it fetches the set at once. (CI saw
// all of a rotation's new-key tokens refused for JWKSMinRefresh.)
func TestJWKSRotationRightAfterRefresh(t *testing.T) {
	t.Parallel()
	testKeys(t)
	p := newIdP(t, pubA)
	o := options(p.URL)
	o.JWKSMinRefresh, o.JWKSMaxAge = time.Minute, time.Minute
	v := newVerifier(t, o)
	now := time.Now()
	var mu sync.Mutex
	v.keys.jwks.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	mu.Lock()
	now = now.Add(2 * time.Minute) // the set is old: the next use fetches it in the background
	mu.Unlock()
	if _, err := v.Verify(signed(t, rsaA, claims("1"))); err != nil {
		t.Fatalf("key A: %v", err)
	}
	eventually(t, 5*time.Second, "the background fetch", func() bool { return p.fetches.Load() == 2 })
	p.publish(t, pubA, pubB)
	if id, err := v.Verify(signed(t, rsaB, claims("2"))); err != nil || id != "2" {
		t.Errorf("key B right after a background fetch: Verify = %q, %v; want verified", id, err)
	}
	if n := p.fetches.Load(); n != 3 {
		t.Errorf("%d fetches; want 3 (start, background, B's kid)", n)
	}
}

// A provider that fails (an error status, bad JSON, a set with no usable key, or no
// answer within the timeout) does not make the keys already held fail.
func TestJWKSFailureKeepsKeys(t *testing.T) {
	t.Parallel()
	testKeys(t)
	for name, fail := range map[string]func(p *idp){
		"500":         func(p *idp) { p.status.Store(500) },
		"bad JSON":    func(p *idp) { b := []byte("{not json"); p.body.Store(&b) },
		"no key":      func(p *idp) { b := []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`); p.body.Store(&b) },
		"no answer":   func(p *idp) { p.hang.Store(true) },
		"unreachable": func(p *idp) { p.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := newIdP(t, pubA)
			o := options(p.URL)
			o.JWKSMinRefresh, o.JWKSTimeout = time.Minute, 200*time.Millisecond
			v := newVerifier(t, o)
			now := time.Now().Add(time.Minute) // past the gap since the first fetch
			v.keys.jwks.now = func() time.Time { return now }
			fail(p)
			before := p.fetches.Load()
			start := time.Now()
			if _, err := v.Verify(signed(t, rsaB, claims("1"))); !errors.Is(err, ErrUnknownKey) {
				t.Errorf("unknown kid while the provider fails: %v; want ErrUnknownKey", err)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("the failed fetch took %v; want it bounded by the 200ms timeout", took)
			}
			if name != "unreachable" && p.fetches.Load() != before+1 {
				t.Errorf("%d fetches, want %d", p.fetches.Load(), before+1)
			}
			if id, err := v.Verify(signed(t, rsaA, claims("2"))); err != nil || id != "2" {
				t.Errorf("key A after the failed fetch: Verify = %q, %v; want 2", id, err)
			}
		})
	}
}

// A Verifier that cannot check anything, or is given a bad setting, is refused.
func TestNewRefuses(t *testing.T) {
	t.Parallel()
	testKeys(t)
	bad := writePEM(t, "CERTIFICATE REQUEST", []byte("x"))
	der, err := x509.MarshalPKCS8PrivateKey(rsaA)
	if err != nil {
		t.Fatal(err)
	}
	private := writePEM(t, "PRIVATE KEY", der)
	timed := func(url string) Options {
		return Options{JWKSURL: url, JWKSMinRefresh: time.Second, JWKSMaxAge: time.Second, JWKSTimeout: time.Second, CacheSize: 1}
	}
	for name, o := range map[string]Options{
		"nothing":           {Secret: secret, HS256: false, CacheSize: 1},
		"no secret":         {HS256: true, CacheSize: 1},
		"bad URL":           {JWKSURL: "ftp://x", JWKSMinRefresh: 1, JWKSMaxAge: 1, JWKSTimeout: 1, CacheSize: 1},
		"no key file":       {PublicKeyFile: filepath.Join(t.TempDir(), "none.pem"), CacheSize: 1},
		"bad key file":      {PublicKeyFile: bad, CacheSize: 1},
		"negative skew":     {Secret: secret, HS256: true, Leeway: -time.Second, CacheSize: 1},
		"no cache":          {Secret: secret, HS256: true},
		"zero JWKS time":    {JWKSURL: "http://127.0.0.1:1/jwks", CacheSize: 1},
		"http off loopback": timed("http://idp.example/jwks"),
		"a private key":     {PublicKeyFile: private, CacheSize: 1},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: New accepted %+v", name, o)
		}
	}
}
