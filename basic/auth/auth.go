// Package auth mints and checks the buyers' bearer tokens: JWT, claim sub = the buyer (see
// package buyer); HS256 with a shared secret, or RS256, ES256, EdDSA with an identity
// provider's keys (keys.go).
package auth

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/golang-lru/v2/expirable"

	"secbuy/basic/buyer"
)

// ErrNoToken means the request carried no bearer token.
var ErrNoToken = errors.New("missing bearer token")

// ErrBadToken means the token did not verify: forged, expired, malformed or with a bad sub.
var ErrBadToken = errors.New("invalid token")

// Mint returns a token for the numeric user userID that expires after ttl.
func Mint(secret string, userID int64, ttl time.Duration) (string, error) {
	return MintSub(secret, strconv.FormatInt(userID, 10), ttl)
}

// MintSub returns a token whose sub is sub (any string; Verify accepts only a buyer.Check
// one) that expires after ttl.
func MintSub(secret, sub string, ttl time.Duration) (string, error) {
	now := time.Now()
	claims := jwt.RegisteredClaims{
		Subject:   sub,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString([]byte(secret))
}

// Verify checks token and returns its sub, the buyer. The token must be HS256-signed with
// secret and carry exp, a JSON number in the future, and sub, a string of 1 to 255
// printable characters without spaces (buyer.Check); "42" is the old numeric user 42.
func Verify(secret, token string) (string, error) {
	id, _, err := verify(&keys{secret: []byte(secret)}, token, time.Now)
	return id, err
}

// verify is Verify with k at the time now returns; it also returns until when the token
// may be trusted (its expiry plus the leeway).
func verify(k *keys, token string, now func() time.Time) (string, time.Time, error) {
	claims, exp, err := k.parse(token, now)
	if err != nil {
		return "", time.Time{}, err
	}
	sub, err := claims.GetSubject()
	if err == nil {
		err = buyer.Check(sub)
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("%w: %w", ErrSubject, buyer.ErrInvalid)
	}
	return sub, exp, nil
}

// cacheFor is the longest a verified token is remembered, however far its expiry.
const cacheFor = 10 * time.Minute

// Verifier checks bearer tokens (see Options), and remembers those that verified in a
// bounded cache of its own, each only until its own expiry: a crowd pressing again costs a
// look-up instead of a signature check and two JSON decodes (the profile of the sold-out
// scenario had a quarter of order-web's CPU in jwt parsing before).
type Verifier struct {
	keys  *keys
	cache *expirable.LRU[string, verified]
	now   func() time.Time
	// gen counts the key removals: a token verified before one (a Verify under way while
	// the cache is purged) is not taken from the cache after it.
	gen atomic.Uint64
}

type verified struct {
	user string
	exp  time.Time
	gen  uint64
}

// NewVerifier returns a Verifier of HS256 tokens signed with secret that remembers up to
// size tokens.
func NewVerifier(secret string, size int) *Verifier {
	return &Verifier{keys: &keys{secret: []byte(secret)}, cache: expirable.NewLRU[string, verified](size, nil, cacheFor), now: time.Now}
}

// New returns a Verifier of the tokens o describes, or an error naming the setting that
// is wrong. With a JWKS URL it fetches the set once before it returns (a provider that
// does not answer is not fatal: see jwks); a key the provider removes later empties the
// cache of verified tokens, so none of its tokens is trusted after that.
func New(o Options) (*Verifier, error) {
	if o.CacheSize < 1 {
		return nil, errors.New("auth: the token cache size must be at least 1")
	}
	k, err := newKeys(o)
	if err != nil {
		return nil, err
	}
	v := &Verifier{keys: k, cache: expirable.NewLRU[string, verified](o.CacheSize, nil, cacheFor), now: time.Now}
	if k.jwks != nil {
		k.jwks.removed = func() {
			v.gen.Add(1)
			v.cache.Purge()
		}
	}
	return v, nil
}

// Verify is the package's Verify, answered from the cache when it can be.
func (v *Verifier) Verify(token string) (string, error) {
	gen := v.gen.Load()
	if t, ok := v.cache.Get(token); ok && t.gen == gen && v.now().Before(t.exp) {
		return t.user, nil
	}
	user, exp, err := verify(v.keys, token, v.now)
	if err != nil {
		return "", err
	}
	v.cache.Add(token, verified{user: user, exp: exp, gen: gen})
	return user, nil
}

// FromRequest verifies the request's "Authorization: Bearer" token: ErrNoToken if there
// is none, an ErrBadToken error if it does not verify.
func (v *Verifier) FromRequest(r *http.Request) (string, error) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if token = strings.TrimSpace(token); !ok || token == "" {
		return "", ErrNoToken
	}
	return v.Verify(token)
}
