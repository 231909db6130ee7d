package text

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"secbuy/proto/outcome"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		name, s string
		max     int
		want    string // "" for accepted
	}{
		{"plain", "phone", 10, ""},
		{"chinese within max", "手机手机手机", 6, ""},
		{"chinese over max", "手机手机手机手", 6, "name: must be at most 6 characters"},
		{"no max", strings.Repeat("x", 5000), 0, ""},
		{"NUL", "a\x00b", 10, "name: contains a NUL character"},
		{"invalid UTF-8", "a\xffb", 10, "name: not valid UTF-8"},
		{"lone surrogate bytes", "a\xed\xa0\x80", 10, "name: not valid UTF-8"},
		{"newline", "a\nb", 10, "name: contains a control character (U+000A)"},
		{"DEL", "a\x7fb", 10, "name: contains a control character (U+007F)"},
		{"C1 control", "a\u0085b", 10, "name: contains a control character (U+0085)"},
		{"U+FFFD typed", "a\ufffdb", 10, ""},
		{"empty", "", 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Check("name", tc.s, tc.max)
			var bad outcome.InvalidInput
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("Check(%q) = %v, want nil", tc.s, err)
			case tc.want != "" && (!errors.As(err, &bad) || string(bad) != tc.want):
				t.Errorf("Check(%q) = %v, want InvalidInput %q", tc.s, err, tc.want)
			}
		})
	}
}

// FuzzCheck: whatever Check accepts, Postgres can store as text and fits max characters.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"a", "a\x00", "\xff", "手机", "\t", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if Check("f", s, 8) != nil {
			return
		}
		if !utf8.ValidString(s) || strings.ContainsRune(s, 0) || utf8.RuneCountInString(s) > 8 {
			t.Fatalf("accepted %q", s)
		}
	})
}
