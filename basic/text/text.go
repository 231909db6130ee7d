// Package text checks the text a client sends before it reaches the database: valid
// UTF-8, no NUL or other control character, and a length in characters. Every RPC handler
// that takes text (a name, a request id) checks it here, so the refusal names the field
// and Postgres never sees a value it would reject (SQLSTATE 22021 for a NUL).
package text

import (
	"fmt"
	"unicode/utf8"

	"secbuy/proto/outcome"
)

// Check returns nil if s is valid UTF-8 of at most max characters (runes) with no control
// character (U+0000–U+001F, U+007F–U+009F); otherwise an outcome.InvalidInput whose
// message starts with field ("name: contains a NUL character"). A max of 0 checks no length.
func Check(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return outcome.InvalidInput(field + ": not valid UTF-8")
	}
	n := 0
	for _, c := range s {
		n++
		switch {
		case c == 0:
			return outcome.InvalidInput(field + ": contains a NUL character")
		case c < 0x20 || c >= 0x7f && c <= 0x9f:
			return outcome.InvalidInput(fmt.Sprintf("%s: contains a control character (U+%04X)", field, c))
		}
	}
	if max > 0 && n > max {
		return outcome.InvalidInput(fmt.Sprintf("%s: must be at most %d characters", field, max))
	}
	return nil
}
