package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	json "github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"secbuy/proto/outcome"
)

// Decode reads r's JSON body, of at most max bytes, into v. It takes exactly one JSON
// object whose member names are v's fields, each once and spelled exactly, in valid UTF-8;
// it refuses unknown or repeated fields (`{"id":43,"id":44}` buys nothing), invalid UTF-8
// (never replaced with U+FFFD), wrong types, numbers that do not fit (never wrapped),
// trailing data and oversized bodies. The refusal names the field.
func Decode(w http.ResponseWriter, r *http.Request, max int64, v any) *outcome.Error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return tooLarge(max)
	case err != nil:
		return Invalid("unreadable body: %s", clean(err))
	case len(bytes.Trim(body, " \t\r\n")) == 0:
		return Invalid("empty body: want a JSON object")
	}
	if err := json.Unmarshal(body, v, json.RejectUnknownMembers(true)); err != nil {
		return decodeFailure(err)
	}
	return nil
}

// decodeFailure says what is wrong with a body json.Unmarshal refused, naming the field
// by its path ("name", "a.b") where there is one.
func decodeFailure(err error) *outcome.Error {
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	switch {
	case errors.As(err, &syn) && errors.Is(syn.Err, jsontext.ErrDuplicateName):
		return Invalid("%s: duplicate key", field(syn.JSONPointer))
	case errors.As(err, &syn) && (strings.Contains(syn.Err.Error(), "invalid UTF-8") || strings.Contains(syn.Err.Error(), "surrogate")):
		return Invalid("%s: not valid UTF-8", field(syn.JSONPointer))
	case errors.As(err, &syn) && strings.Contains(syn.Err.Error(), "exceeded max depth"):
		return Invalid("malformed JSON body: nested too deeply")
	case errors.As(err, &sem) && errors.Is(sem.Err, json.ErrUnknownName):
		return Invalid("unknown field %q", field(sem.JSONPointer))
	case errors.As(err, &sem) && sem.JSONPointer == "":
		return Invalid("malformed JSON body: want a JSON object")
	case errors.As(err, &sem) && sem.GoType != nil:
		return Invalid("field %q: want %s", field(sem.JSONPointer), sem.GoType)
	}
	return Invalid("malformed JSON body: %s", clean(err))
}

// field is the path of JSON pointer p as a reply shows it: "/a/b" is "a.b", with anything
// but printable ASCII shown as '?' (the body's name comes back in the reply).
func field(p jsontext.Pointer) string {
	s := strings.ReplaceAll(strings.TrimPrefix(string(p), "/"), "/", ".")
	if s == "" {
		s = "body"
	}
	return clean(errors.New(s))
}

func tooLarge(max int64) *outcome.Error {
	e := outcome.Refuse(outcome.Reason_BODY_TOO_LARGE)
	e.Detail = fmt.Sprintf("body larger than %d bytes", max)
	return e
}
