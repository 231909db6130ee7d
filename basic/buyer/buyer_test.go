package buyer

import "testing"

func TestID(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"42": 42, "1": 1, "9223372036854775807": 1<<63 - 1,
		"0": 0, "042": 0, "+42": 0, "-1": 0, "9223372036854775808": 0, "6f1c2a9e-3b7d": 0, "": 0} {
		if got := ID(in); got != want {
			t.Errorf("ID(%q) = %d, want %d", in, got, want)
		}
	}
}

// Of: the new field wins, the old one alone still works, and they may not disagree.
func TestOf(t *testing.T) {
	t.Parallel()
	for name, c := range map[string]struct {
		buyer string
		id    int64
		want  string
		ok    bool
	}{
		"old field":        {"", 42, "42", true},
		"new field":        {"ana", 0, "ana", true},
		"both agree":       {"42", 42, "42", true},
		"both disagree":    {"42", 7, "", false},
		"id beside a name": {"ana", 7, "", false},
		"neither":          {"", 0, "", false},
		"negative":         {"", -1, "", false},
		"bad buyer":        {"a b", 0, "", false},
	} {
		t.Run(name, func(t *testing.T) {
			got, err := Of(c.buyer, c.id)
			if got != c.want || (err == nil) != c.ok {
				t.Errorf("Of(%q, %d) = %q, %v; want %q, ok %v", c.buyer, c.id, got, err, c.want, c.ok)
			}
		})
	}
}
