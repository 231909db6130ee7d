package outcome

import (
	"errors"
	"net/http"
)

// statuses is each reason's HTTP-like status: what a go-micro client reads in Error.code
// and what the HTTP edge answers with (but for ORDER_PENDING, a 202 there).
var statuses = map[Reason]int{
	Reason_INVALID_INPUT:       http.StatusBadRequest,
	Reason_COMMODITY_NOT_FOUND: http.StatusNotFound,
	Reason_SOLD_OUT:            http.StatusConflict,
	Reason_NOT_STARTED:         http.StatusConflict,
	Reason_ENDED:               http.StatusConflict,
	Reason_REQUEST_REUSED:      http.StatusConflict,
	Reason_ALREADY_BOUGHT:      http.StatusConflict,
	Reason_ORDER_NOT_FOUND:     http.StatusNotFound,
	Reason_NOT_YOURS:           http.StatusForbidden,
	Reason_ORDER_PENDING:       http.StatusServiceUnavailable,
	Reason_ORDER_CANCELLED:     http.StatusConflict,
	Reason_PAYMENT_NOT_FOUND:   http.StatusNotFound,
	Reason_PAYMENT_EXPIRED:     http.StatusConflict,
	Reason_NO_SALE:             http.StatusNotFound,
	Reason_NOT_GRANTED:         http.StatusConflict,
	Reason_IN_PROGRESS:         http.StatusConflict,
	Reason_BUSY:                http.StatusServiceUnavailable,
	Reason_SLOW_DOWN:           http.StatusTooManyRequests,
	Reason_UNAUTHENTICATED:     http.StatusUnauthorized,
	Reason_INVALID_TOKEN:       http.StatusUnauthorized,
	Reason_ADMIN_KEY_REQUIRED:  http.StatusUnauthorized,
	Reason_METHOD_NOT_ALLOWED:  http.StatusMethodNotAllowed,
	Reason_BODY_TOO_LARGE:      http.StatusRequestEntityTooLarge,
	Reason_ROUTE_NOT_FOUND:     http.StatusNotFound,
	Reason_INTERNAL:            http.StatusInternalServerError,
	Reason_TICKET_REQUIRED:     http.StatusForbidden,
	// The causes of INVALID_TOKEN.
	Reason_TOKEN_MALFORMED:       http.StatusUnauthorized,
	Reason_TOKEN_UNSIGNED:        http.StatusUnauthorized,
	Reason_TOKEN_ALG_NOT_ALLOWED: http.StatusUnauthorized,
	Reason_TOKEN_KEY_MISMATCH:    http.StatusUnauthorized,
	Reason_TOKEN_UNKNOWN_KEY:     http.StatusUnauthorized,
	Reason_TOKEN_BAD_SIGNATURE:   http.StatusUnauthorized,
	Reason_TOKEN_NO_EXPIRY:       http.StatusUnauthorized,
	Reason_TOKEN_EXPIRED:         http.StatusUnauthorized,
	Reason_TOKEN_NOT_YET_VALID:   http.StatusUnauthorized,
	Reason_TOKEN_BAD_ISSUER:      http.StatusUnauthorized,
	Reason_TOKEN_BAD_AUDIENCE:    http.StatusUnauthorized,
	Reason_TOKEN_BAD_SUBJECT:     http.StatusUnauthorized,
}

// Status is r's HTTP-like status. A reason without one (REASON_UNSPECIFIED, or one added
// by a newer peer) is a plain refusal: 409.
func (r Reason) Status() int {
	if s, ok := statuses[r]; ok {
		return s
	}
	return http.StatusConflict
}

// Refuse returns the Error of reason r.
func Refuse(r Reason) *Error {
	return &Error{Code: int32(r.Status()), Reason: r}
}

// Invalid returns the INVALID_INPUT Error saying what was wrong.
func Invalid(detail string) *Error {
	e := Refuse(Reason_INVALID_INPUT)
	e.Detail = detail
	return e
}

// Parse returns the reason named name (as Reason.String writes it, the form secbuy
// stores); REASON_UNSPECIFIED for an unknown name.
func Parse(name string) Reason {
	return Reason(Reason_value[name])
}

// InvalidInput is the error of a request that names what is wrong with it; Of maps it to
// INVALID_INPUT with that detail.
type InvalidInput string

func (e InvalidInput) Error() string { return string(e) }

// Rule says which reason callers see for a domain error.
type Rule struct {
	Err    error
	Reason Reason
}

// Of returns the refusal of err: INVALID_INPUT for an InvalidInput, or the reason of the
// first rule whose error err is (errors.Is); nil if none applies (an unexpected failure).
func Of(err error, rules []Rule) *Error {
	var bad InvalidInput
	if errors.As(err, &bad) {
		return Invalid(string(bad))
	}
	for _, r := range rules {
		if errors.Is(err, r.Err) {
			return Refuse(r.Reason)
		}
	}
	return nil
}
