package httpapi

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// tokenCacheMax bounds the verified-token cache; past it the cache starts afresh.
const tokenCacheMax = 200_000

// tokens remembers tokens that verified, so a buyer pressing again (and a crowd of them)
// costs a map look-up instead of a signature check and two JSON decodes: the profile of
// the sold-out scenario had a quarter of order-web's CPU in jwt parsing. An entry is only
// trusted until the token's own expiry.
type tokenCache struct {
	m atomic.Pointer[sync.Map] // token → cachedToken
	n atomic.Int64
}

type cachedToken struct {
	secret string
	user   int64
	exp    time.Time
}

var tokens = newTokenCache()

func newTokenCache() *tokenCache {
	c := &tokenCache{}
	c.m.Store(&sync.Map{})
	return c
}

// verify returns the user id of token, checking it with verify only on a miss.
func (c *tokenCache) verify(secret, token string, verify func(secret, token string) (int64, error)) (int64, error) {
	if v, ok := c.m.Load().Load(token); ok {
		t := v.(cachedToken)
		if t.secret == secret && time.Now().Before(t.exp) {
			return t.user, nil
		}
	}
	user, err := verify(secret, token)
	if err != nil {
		return 0, err
	}
	// The expiry is read again, unverified, from a token that just verified with exp required.
	var claims jwt.RegisteredClaims
	if _, _, perr := jwt.NewParser().ParseUnverified(token, &claims); perr == nil && claims.ExpiresAt != nil {
		if c.n.Add(1) > tokenCacheMax {
			c.m.Store(&sync.Map{})
			c.n.Store(1)
		}
		c.m.Load().Store(token, cachedToken{secret: secret, user: user, exp: claims.ExpiresAt.Time})
	}
	return user, nil
}
