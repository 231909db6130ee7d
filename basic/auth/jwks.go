package auth

import (
	"context"
	"crypto"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/jwkset"
)

// maxJWKS bounds the body of a JWKS answer.
const maxJWKS = 1 << 20

// jwks is an identity provider's key set, fetched from its URL and kept in memory. A
// token naming an unknown kid fetches it again (a key rotated in), at most once per
// minGap, however many such tokens come: the others wait for that one fetch, or once it
// is done see its result without fetching. That limit counts only such fetches, so a
// background fetch just before a rotation does not hold the new key back. A set older
// than maxAge is fetched again in the background on its next use (a key rotated out stops
// verifying). A fetch that fails, or whose set has no usable key, changes nothing: the
// keys already held keep verifying.
type jwks struct {
	url     string
	client  *http.Client
	minGap  time.Duration
	maxAge  time.Duration
	now     func() time.Time
	removed func() // called after a fetch that dropped a key

	set     atomic.Pointer[keySet]
	mu      sync.Mutex // held by the one fetch in progress
	tried   time.Time  // when the last fetch started (under mu)
	unknown time.Time  // when the last fetch for an unknown kid started (under mu)
}

// keySet is one fetched set: its signing keys by kid, and all of them.
type keySet struct {
	byKID   map[string]publicKey
	keys    []publicKey
	fetched time.Time
}

// publicKey is one key of a set, with the alg it is limited to ("" for any that fits).
type publicKey struct {
	pub crypto.PublicKey
	alg string
}

// fits says whether a token of alg may be checked with k.
func (k publicKey) fits(alg string, kind func(crypto.PublicKey) bool) bool {
	return (k.alg == "" || k.alg == alg) && kind(k.pub)
}

func newJWKS(rawURL string, minGap, maxAge, timeout time.Duration) (*jwks, error) {
	u, err := url.Parse(rawURL)
	if err != nil || !safeURL(u) || u.Host == "" {
		// Whoever can change the set in flight can mint any buyer's token.
		return nil, fmt.Errorf("auth: SECBUY_JWKS_URL must be an https URL (http only on a loopback host)")
	}
	if minGap <= 0 || maxAge <= 0 || timeout <= 0 {
		return nil, errors.New("auth: SECBUY_JWKS_MIN_REFRESH, SECBUY_JWKS_MAX_AGE and SECBUY_JWKS_TIMEOUT must be positive")
	}
	client := &http.Client{Timeout: timeout, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 || !safeURL(req.URL) {
			return errors.New("redirect refused: not to https")
		}
		return nil
	}}
	j := &jwks{url: rawURL, client: client, minGap: minGap, maxAge: maxAge, now: time.Now, removed: func() {}}
	j.set.Store(&keySet{})
	j.mu.Lock()
	j.fetch() // a provider down at start-up is not fatal: its keys are fetched on first use
	j.mu.Unlock()
	return j, nil
}

// safeURL says whether a key set may be fetched from u: https, or http to this machine
// (127.0.0.0/8, ::1 or localhost).
func safeURL(u *url.URL) bool {
	if u.Scheme == "https" {
		return true
	}
	h := u.Hostname()
	ip, err := netip.ParseAddr(h)
	return u.Scheme == "http" && (h == "localhost" || err == nil && ip.IsLoopback())
}

// cached returns the key of kid in the set held now, without fetching.
func (j *jwks) cached(kid string) (publicKey, bool) {
	k, ok := j.set.Load().byKID[kid]
	return k, ok
}

// all returns every key of the set held now.
func (j *jwks) all() []publicKey {
	j.refreshIfOld()
	return j.set.Load().keys
}

// lookup returns the key of kid, fetching the set again if kid is unknown (rate limited).
func (j *jwks) lookup(kid string) (publicKey, bool) {
	if k, ok := j.cached(kid); ok {
		j.refreshIfOld()
		return k, true
	}
	j.mu.Lock()
	if _, ok := j.cached(kid); !ok && j.now().Sub(j.unknown) >= j.minGap {
		j.unknown = j.now()
		j.fetch()
	}
	j.mu.Unlock()
	return j.cached(kid)
}

// refreshIfOld starts a background fetch if the set is older than maxAge and no fetch is
// in progress (nor started within minGap).
func (j *jwks) refreshIfOld() {
	if j.now().Sub(j.set.Load().fetched) < j.maxAge || !j.mu.TryLock() {
		return
	}
	if j.now().Sub(j.tried) < j.minGap {
		j.mu.Unlock()
		return
	}
	go func() {
		defer j.mu.Unlock()
		j.fetch()
	}()
}

// fetch gets the set and, if it has a usable key, holds it from now on. j.mu is held.
func (j *jwks) fetch() {
	j.tried = j.now()
	set, err := j.get()
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // its message holds the URL, query and all
		}
		slog.Warn("jwks: fetch failed; keeping the keys held", "url", redact(j.url), "err", err,
			"keys_held", len(j.set.Load().keys))
		return
	}
	old := j.set.Swap(set)
	for kid, k := range old.byKID {
		if now, ok := set.byKID[kid]; !ok || !sameKey(k.pub, now.pub) {
			j.removed() // a key gone, or its kid now another key's
			break
		}
	}
}

// sameKey says whether a and b are one public key.
func sameKey(a, b crypto.PublicKey) bool {
	e, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && e.Equal(b)
}

// get fetches and parses the set. Keys secbuy cannot use (encryption keys, symmetric
// keys, other types) are left out; a set left with none is an error.
func (j *jwks) get() (*keySet, error) {
	ctx, cancel := context.WithTimeout(context.Background(), j.client.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	var raw jwkset.JWKSMarshal
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxJWKS)).Decode(&raw); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	set := &keySet{byKID: map[string]publicKey{}, fetched: j.now()}
	for _, m := range raw.Keys {
		if m.USE == jwkset.UseEnc || m.KTY == jwkset.KtyOct {
			continue
		}
		jwk, err := jwkset.NewJWKFromMarshal(m, jwkset.JWKMarshalOptions{}, jwkset.JWKValidateOptions{})
		if err != nil {
			slog.Warn("jwks: key left out", "kid", m.KID, "err", err)
			continue
		}
		k := publicKey{pub: jwk.Key(), alg: string(m.ALG)}
		if algOf(k.pub) == "" {
			continue
		}
		set.keys = append(set.keys, k)
		if m.KID != "" {
			set.byKID[m.KID] = k
		}
	}
	if len(set.keys) == 0 {
		return nil, errors.New("no usable signing key in the set")
	}
	return set, nil
}

// redact is rawURL without a password or query (which may carry a credential).
func redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery = ""
	return u.Redacted()
}

// KeyID is the kid secbuy gives pub: the first 16 hex digits of the SHA-256 of its PKIX
// form, so a key file and its JWKS agree without a setting.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:8]), nil
}

// PublicJWKS returns the JWKS JSON of pubs, each with its KeyID, its alg and use "sig":
// what an identity provider publishes, for development and tests.
func PublicJWKS(pubs ...crypto.PublicKey) ([]byte, error) {
	var set jwkset.JWKSMarshal
	for _, pub := range pubs {
		kid, err := KeyID(pub)
		if err != nil {
			return nil, err
		}
		jwk, err := jwkset.NewJWKFromKey(pub, jwkset.JWKOptions{Metadata: jwkset.JWKMetadataOptions{
			KID: kid, ALG: jwkset.ALG(algOf(pub)), USE: jwkset.UseSig,
		}})
		if err != nil {
			return nil, err
		}
		set.Keys = append(set.Keys, jwk.Marshal())
	}
	return json.MarshalIndent(set, "", "  ")
}
