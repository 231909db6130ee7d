package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/go-json-experiment/json/jsontext"

	"secbuy/basic/httpapi/httpapitest"
)

// fuzzBody has the field kinds the services decode.
type fuzzBody struct {
	ID    int64  `json:"id"`
	Name  string `json:"name"`
	Count int32  `json:"count"`
}

// FuzzDecode: Decode never panics; it accepts exactly one JSON object with known fields
// of the right types, each once, in valid UTF-8, no larger than max, and decodes it as
// encoding/json would; it
// refuses anything else with 400, or 413 when the body is larger than max; its error
// detail is short printable ASCII whatever the input.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"id":3}`, `{"id":3,"name":"商品","count":2}`, ``, ` `, `{`, `{"id":`, `{"id":"3"}`, `{"id":3.5}`,
		`{"id":1e3}`, `{"id":-0}`, `{"id":99999999999999999999}`, `{"count":2147483648}`, `{"x":1}`,
		`{"ID":1}`, `{"id":1,"id":2}`, `{"id":3} {"id":4}`, `{"id":3}x`, `[1]`, `null`, `"s"`, `3`,
		"{\"name\":\"\x00\xff\"}", "{\"name\":\"\\ud800\"}", "{\"\xff\":1}", `{"name":{"a":[1,2,{}]}}`,
		"\xef\xbb\xbf{\"id\":1}", `{"id":1}` + "\n", `{"id":1}   `,
	} {
		f.Add([]byte(s), uint16(64))
	}
	f.Add(bytes.Repeat([]byte("["), 5000), uint16(8000))
	for _, field := range []string{"id", "name"} {
		for _, b := range httpapitest.HostileBodies(field) {
			f.Add(b, uint16(65535))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte, max16 uint16) {
		max := int64(max16)
		var got fuzzBody
		e := Decode(httptest.NewRecorder(), httptest.NewRequest("POST", "/", bytes.NewReader(body)), max, &got)
		if e == nil {
			if int64(len(body)) > max {
				t.Fatalf("accepted %d bytes with max %d", len(body), max)
			}
			if !jsontext.Value(body).IsValid() {
				t.Fatalf("accepted %q: invalid UTF-8 or a repeated key", body)
			}
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			var want fuzzBody
			if err := dec.Decode(&want); err != nil || !reflect.DeepEqual(got, want) || dec.More() {
				t.Fatalf("Decode(%q) = %+v; encoding/json says %+v, %v", body, got, want, err)
			}
			return
		}
		switch {
		case e.Code == 413 && int64(len(body)) <= max:
			t.Fatalf("Decode(%q): 413 for %d bytes with max %d", body, len(body), max)
		case e.Code != 400 && e.Code != 413:
			t.Fatalf("Decode(%q): code %d", body, e.Code)
		case e.Detail == "" || len(e.Detail) > 200:
			t.Fatalf("Decode(%q): detail %q", body, e.Detail)
		}
		for _, c := range []byte(e.Detail) {
			if c < 0x20 || c > 0x7e {
				t.Fatalf("Decode(%q): detail %q is not printable ASCII", body, e.Detail)
			}
		}
	})
}
