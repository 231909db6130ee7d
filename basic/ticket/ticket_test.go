package ticket

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func issuer(t *testing.T, secret string, bits int) (*Issuer, *time.Time) {
	t.Helper()
	i, err := New(secret, 5*time.Second, bits)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	i.now = func() time.Time { return now }
	return i, &now
}

func TestTicket(t *testing.T) {
	i, now := issuer(t, "a-secret-of-thirty-two-bytes-or-more", 0)
	tk := i.Issue("42", 7)
	if err := i.Check(tk.Value, "", "42", 7); err != nil {
		t.Fatalf("its own ticket: %v", err)
	}
	if !tk.Expires.Equal(now.Add(5*time.Second)) || tk.Bits != 0 {
		t.Errorf("ticket %+v; want expiry in 5 s and no work", tk)
	}
	other, _ := issuer(t, "another-secret-of-thirty-two-bytes-or-more", 0)
	tampered := strings.Replace(tk.Value, "1.7.", "1.8.", 1)
	// Buyer "42"'s ticket read as buyer "2"'s with the work "04": the same bytes but for the
	// NUL between the head and the buyer; and "04" is not a number as Issue writes it.
	shifted := strings.Replace(tk.Value, ".0.", ".04.", 1)
	for _, c := range []struct {
		name, ticket, buyer string
		sid                 int64
		want                error
	}{
		{"no ticket", "", "42", 7, ErrMissing},
		{"another buyer", tk.Value, "43", 7, ErrInvalid},
		{"a buyer whose name continues another's", tk.Value, "42\x00", 7, ErrInvalid},
		{"a digit moved from the buyer to the head", shifted, "2", 7, ErrInvalid},
		{"another commodity", tk.Value, "42", 8, ErrInvalid},
		{"its commodity changed", tampered, "42", 8, ErrInvalid},
		{"another key's", other.Issue("42", 7).Value, "42", 7, ErrInvalid},
		{"no MAC", "1.7.1800000005000.0", "42", 7, ErrInvalid},
		{"garbage", "....", "42", 7, ErrInvalid},
		{"too long", strings.Repeat("a", 200), "42", 7, ErrInvalid},
		{"unchanged", tk.Value, "42", 7, nil},
	} {
		if err := i.Check(c.ticket, "", c.buyer, c.sid); !errors.Is(err, c.want) {
			t.Errorf("%s: %v; want %v", c.name, err, c.want)
		}
	}
	*now = now.Add(5*time.Second - time.Millisecond)
	if err := i.Check(tk.Value, "", "42", 7); err != nil {
		t.Errorf("a millisecond before its expiry: %v", err)
	}
	*now = now.Add(time.Millisecond)
	if err := i.Check(tk.Value, "", "42", 7); !errors.Is(err, ErrExpired) {
		t.Errorf("at its expiry: %v; want ErrExpired", err)
	}
}

func TestProofOfWork(t *testing.T) {
	i, _ := issuer(t, "a-secret-of-thirty-two-bytes-or-more", 12)
	tk := i.Issue("6f1c2a9e-uuid-buyer", 3)
	if tk.Bits != 12 {
		t.Fatalf("bits %d; want 12", tk.Bits)
	}
	nonce := Solve(tk)
	if ZeroBits(tk.Value, nonce) < 12 {
		t.Fatalf("Solve gave %q with %d zero bits", nonce, ZeroBits(tk.Value, nonce))
	}
	if err := i.Check(tk.Value, nonce, "6f1c2a9e-uuid-buyer", 3); err != nil {
		t.Errorf("solved: %v", err)
	}
	var wrong string
	for n := 0; ; n++ { // a nonce that does not solve it
		if s := string(rune('a' + n%26)); ZeroBits(tk.Value, s) < 12 {
			wrong = s
			break
		}
	}
	for _, nonce := range []string{"", wrong} {
		if err := i.Check(tk.Value, nonce, "6f1c2a9e-uuid-buyer", 3); !errors.Is(err, ErrNoWork) {
			t.Errorf("nonce %q: %v; want ErrNoWork", nonce, err)
		}
	}
	// The work asked is the ticket's, signed in it: an issuer asking for less still wants it.
	easy, _ := issuer(t, "a-secret-of-thirty-two-bytes-or-more", 0)
	if err := easy.Check(tk.Value, wrong, "6f1c2a9e-uuid-buyer", 3); !errors.Is(err, ErrNoWork) {
		t.Errorf("checked by an issuer with no work: %v; want ErrNoWork", err)
	}
}

func TestZeroBits(t *testing.T) {
	// The SHA-256 of each, in hex: 5ac9481b…, 00000a216e… (counted with Python's hashlib).
	for _, c := range []struct {
		ticket, nonce string
		want          int
	}{{"abc", "", 1}, {"t", "103944", 20}} {
		if n := ZeroBits(c.ticket, c.nonce); n != c.want {
			t.Errorf("ZeroBits(%q, %q) = %d; want %d", c.ticket, c.nonce, n, c.want)
		}
	}
	if s := Solve(Ticket{Value: "t", Bits: 20}); s != "103944" {
		t.Errorf("Solve(t, 20 bits) = %q; want the first such nonce, 103944", s)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, c := range []struct {
		secret string
		ttl    time.Duration
		bits   int
	}{{"", time.Second, 0}, {"s", 0, 0}, {"s", time.Second, -1}, {"s", time.Second, 33}} {
		if _, err := New(c.secret, c.ttl, c.bits); err == nil {
			t.Errorf("New(%q, %v, %d): no error", c.secret, c.ttl, c.bits)
		}
	}
}

// Every order-web instance derives the same key from the shared secret: a ticket one
// issues, another admits.
func TestTicketAcrossInstances(t *testing.T) {
	a, _ := New("a-secret-of-thirty-two-bytes-or-more", 5*time.Second, 0)
	b, _ := New("a-secret-of-thirty-two-bytes-or-more", 5*time.Second, 0)
	if err := b.Check(a.Issue("u-1", 9).Value, "", "u-1", 9); err != nil {
		t.Errorf("a ticket of another instance: %v", err)
	}
}
