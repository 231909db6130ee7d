package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestDecodeHostile: what encoding/json would take with a silent choice of its own (the
// last of two ids, U+FFFD for bad bytes, a name in another case) is a 400 naming the field.
func TestDecodeHostile(t *testing.T) {
	for _, tc := range []struct{ name, body, want string }{
		{"duplicate key", `{"id":43,"id":44}`, "id: duplicate key"},
		{"duplicate key, other case", `{"id":43,"ID":44}`, `unknown field "ID"`},
		{"invalid UTF-8", "{\"name\":\"a\xffb\"}", "name: not valid UTF-8"},
		{"lone surrogate", `{"name":"\udc00"}`, "name: not valid UTF-8"},
		{"invalid UTF-8 in a key", "{\"\xff\":1}", "body: not valid UTF-8"},
		{"unknown field", `{"id":1,"userId":2}`, `unknown field "userId"`},
		{"huge number", `{"id":99999999999999999999}`, `field "id": want int64`},
		{"float", `{"id":1.5}`, `field "id": want int64`},
		{"string for a number", `{"id":"1"}`, `field "id": want int64`},
		{"int32 overflow", `{"count":2147483648}`, `field "count": want int32`},
		{"array", `[1]`, "malformed JSON body: want a JSON object"},
		{"empty", ` `, "empty body: want a JSON object"},
		{"trailing data", `{"id":1}{"id":2}`, "malformed JSON body: jsontext: invalid character '{' after top-level value after offset 8"},
		{"deep nesting", `{"name":` + strings.Repeat("[", 20000), "malformed JSON body: nested too deeply"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got fuzzBody
			e := Decode(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(tc.body)), 1<<20, &got)
			if e == nil || e.Code != 400 || e.Detail != tc.want {
				t.Errorf("Decode(%.40q) = %v (decoded %+v); want 400 %q", tc.body, e, got, tc.want)
			}
		})
	}
	// A NUL is valid JSON text: Decode keeps it, and the field's own check (basic/text) refuses it.
	var got fuzzBody
	if e := Decode(httptest.NewRecorder(), httptest.NewRequest("POST", "/", strings.NewReader(`{"name":"a\u0000b"}`)), 64, &got); e != nil || got.Name != "a\x00b" {
		t.Errorf("NUL: %v %q", e, got.Name)
	}
}

// decodeV1 is Decode as it was with encoding/json, the baseline of BenchmarkDecode.
func decodeV1(w http.ResponseWriter, r *http.Request, max int64, v any) error {
	r.Body = http.MaxBytesReader(w, r.Body, max)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data")
	}
	return nil
}

// BenchmarkDecode: a buy's body, {"id":N}, as /order/sell decodes it: now (strict) and
// with encoding/json as before.
func BenchmarkDecode(b *testing.B) {
	body := []byte(`{"id":4242}`)
	w := httptest.NewRecorder()
	for _, bc := range []struct {
		name   string
		decode func(r *http.Request, v *struct{ ID int64 }) bool
	}{
		{"strict", func(r *http.Request, v *struct{ ID int64 }) bool {
			var s struct {
				ID int64 `json:"id"`
			}
			ok := Decode(w, r, 1024, &s) == nil
			v.ID = s.ID
			return ok
		}},
		{"encoding-json", func(r *http.Request, v *struct{ ID int64 }) bool {
			var s struct {
				ID int64 `json:"id"`
			}
			err := decodeV1(w, r, 1024, &s)
			v.ID = s.ID
			return err == nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := httptest.NewRequest("POST", "/order/sell", nil)
			rd := bytes.NewReader(body)
			b.ReportAllocs()
			for b.Loop() {
				rd.Reset(body)
				r.Body = readCloser{rd}
				var v struct{ ID int64 }
				if !bc.decode(r, &v) || v.ID != 4242 {
					b.Fatal("not decoded")
				}
			}
		})
	}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }
