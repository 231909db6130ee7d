// Package buyer is the buyer's id as the services carry it: the token's sub, a string (RFC
// 7519). A sub of plain decimal digits is also the old numeric user id, kept in the int64
// userId fields, so old clients see no change; any other sub has userId 0.
package buyer

import (
	"errors"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// MaxLen is the most characters (not bytes) a buyer may have.
const MaxLen = 255

// ErrInvalid is the error of a string that cannot be a buyer.
var ErrInvalid = errors.New("buyer must be 1 to 255 printable characters without spaces")

// Check says whether s may be a buyer: valid UTF-8 of 1 to MaxLen characters, each
// printable (unicode.IsPrint: letters, marks, numbers, punctuation, symbols) and none a
// space, so no control, format (bidi) or invisible characters reach keys, rows or logs.
// U+FFFD is refused too: a JSON decoder puts it for invalid UTF-8, which is no one's id.
func Check(s string) error {
	if s == "" || len(s) > MaxLen*utf8.UTFMax || !utf8.ValidString(s) || utf8.RuneCountInString(s) > MaxLen {
		return ErrInvalid
	}
	for _, c := range s {
		if !unicode.IsPrint(c) || unicode.IsSpace(c) || c == utf8.RuneError {
			return ErrInvalid
		}
	}
	return nil
}

// ID returns the old numeric user id of buyer b: its value if b is a positive decimal
// integer written plainly ("42"; not "042", "+42" or above 2^63-1), else 0.
func ID(b string) int64 {
	id, err := strconv.ParseInt(b, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != b {
		return 0
	}
	return id
}

// FromID returns the buyer of the old numeric user id: its decimal digits, the same string
// as the database and the Redis keys held for it before buyers were strings.
func FromID(id int64) string { return strconv.FormatInt(id, 10) }

// Of returns the buyer a request names with the new field b or the old userID: b when set
// (userID, if also set, must be ID(b)), else userID in decimal. A request that names no
// valid buyer gets an error whose text is fit for the caller.
func Of(b string, userID int64) (string, error) {
	switch {
	case b == "" && userID <= 0:
		return "", errors.New("userId must be a positive integer")
	case b == "":
		return FromID(userID), nil
	case Check(b) != nil:
		return "", ErrInvalid
	case userID != 0 && userID != ID(b):
		return "", errors.New("userId does not match buyer")
	}
	return b, nil
}
