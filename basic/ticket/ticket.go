// Package ticket issues and checks the tickets of commodities sold only to buyers who came
// through the page: a ticket is an HMAC of the buyer, the commodity and a deadline a few
// seconds off, so any order-web instance checks one in memory, with no network call.
// Optionally a ticket comes with a proof of work: the buyer must find a nonce such that
// SHA-256(ticket "." nonce) starts with Bits zero bits, which costs a script fetching
// tickets in bulk CPU for each.
package ticket

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"math/bits"
	"strconv"
	"strings"
	"time"
)

// Why a ticket does not admit a press (each is TICKET_REQUIRED to the buyer).
var (
	ErrMissing = errors.New("no ticket")
	ErrInvalid = errors.New("ticket is not one of ours, or is for another buyer or commodity")
	ErrExpired = errors.New("ticket expired")
	ErrNoWork  = errors.New("ticket's proof of work is missing or wrong")
)

// MaxBits is the most zero bits a proof of work may be asked for.
const MaxBits = 32

// maxLen bounds a ticket or a nonce read from a request.
const maxLen = 128

// Issuer makes and checks tickets with one key.
type Issuer struct {
	key  []byte
	ttl  time.Duration
	bits int
	now  func() time.Time
}

// Ticket is what a buyer is given: the ticket, when it stops admitting, and the zero bits
// its proof of work needs (0: none).
type Ticket struct {
	Value   string
	Expires time.Time
	Bits    int
}

// New returns an Issuer whose key is derived from secret (every instance that shares the
// secret checks every other's tickets); a ticket lives ttl, and needs a proof of bits
// zero bits (0 to MaxBits).
func New(secret string, ttl time.Duration, bits int) (*Issuer, error) {
	if len(secret) == 0 || ttl <= 0 || bits < 0 || bits > MaxBits {
		return nil, errors.New("ticket: need a secret, a positive SECBUY_TICKET_TTL and SECBUY_TICKET_POW_BITS from 0 to 32")
	}
	// A key of its own, so that a ticket's MAC is never another use's of the secret.
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte("secbuy ticket key v1"))
	return &Issuer{key: m.Sum(nil), ttl: ttl, bits: bits, now: time.Now}, nil
}

// Issue returns a ticket for buyer and commodity sid.
func (i *Issuer) Issue(buyer string, sid int64) Ticket {
	exp := i.now().Add(i.ttl).UnixMilli()
	head := "1." + strconv.FormatInt(sid, 10) + "." + strconv.FormatInt(exp, 10) + "." + strconv.Itoa(i.bits)
	return Ticket{Value: head + "." + i.mac(head, buyer), Expires: time.UnixMilli(exp), Bits: i.bits}
}

// Check says whether ticket, with nonce, admits buyer's press for commodity sid: nil, or
// one of the errors above.
func (i *Issuer) Check(ticket, nonce, buyer string, sid int64) error {
	if ticket == "" {
		return ErrMissing
	}
	if len(ticket) > maxLen || len(nonce) > maxLen {
		return ErrInvalid
	}
	cut := strings.LastIndexByte(ticket, '.')
	if cut < 0 {
		return ErrInvalid
	}
	head, mac := ticket[:cut], ticket[cut+1:]
	if !hmac.Equal([]byte(mac), []byte(i.mac(head, buyer))) {
		return ErrInvalid
	}
	parts := strings.Split(head, ".")
	if len(parts) != 4 || parts[0] != "1" || parts[1] != strconv.FormatInt(sid, 10) {
		return ErrInvalid
	}
	exp, err1 := strconv.ParseInt(parts[2], 10, 64)
	need, err2 := strconv.Atoi(parts[3])
	if err1 != nil || err2 != nil || strconv.FormatInt(exp, 10) != parts[2] || strconv.Itoa(need) != parts[3] {
		return ErrInvalid // only ever numbers in Issue's form: the MAC is ours
	}
	if i.now().UnixMilli() >= exp {
		return ErrExpired
	}
	if need > 0 && ZeroBits(ticket, nonce) < need {
		return ErrNoWork
	}
	return nil
}

// mac is the MAC of a ticket's head for buyer, in unpadded base64url. The buyer is not in
// the ticket (the token names them); a NUL, which no head holds, keeps the two apart.
func (i *Issuer) mac(head, buyer string) string {
	m := hmac.New(sha256.New, i.key)
	m.Write([]byte(head))
	m.Write([]byte{0})
	m.Write([]byte(buyer))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// ZeroBits is how many zero bits SHA-256(ticket "." nonce) starts with.
func ZeroBits(ticket, nonce string) int {
	sum := sha256.Sum256([]byte(ticket + "." + nonce))
	n := 0
	for k := 0; k < len(sum); k += 8 {
		w := binary.BigEndian.Uint64(sum[k:])
		n += bits.LeadingZeros64(w)
		if w != 0 {
			break
		}
	}
	return n
}

// Solve finds a nonce for ticket t (what the buyer's page does, in JavaScript): the
// decimal count from 0 of the first that gives t.Bits zero bits.
func Solve(t Ticket) string {
	for n := uint64(0); ; n++ {
		s := strconv.FormatUint(n, 10)
		if ZeroBits(t.Value, s) >= t.Bits {
			return s
		}
	}
}
