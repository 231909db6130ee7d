package svc

import (
	"bytes"
	"errors"
	"io"
	"testing"

	merrors "go-micro.dev/v6/errors"

	"secbuy/proto/outcome"
)

type buffer struct{ *bytes.Buffer }

func (buffer) Close() error { return nil }

// TestStrictJSON: a JSON request body that protojson (or the JSON grammar) refuses is a
// 400 naming what is wrong; a good one decodes as go-micro's own codec decodes it.
func TestStrictJSON(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string // want: the 400's detail, "" for accepted
	}{
		{"good", `{"code":7,"detail":"商品"}`, ""},
		{"NUL is left to the handler", `{"detail":"a\u0000b"}`, ""},
		{"duplicate key", `{"detail":"a","detail":"b"}`, "detail: duplicate key"},
		{"invalid UTF-8", "{\"detail\":\"a\xffb\"}", "detail: not valid UTF-8"},
		{"lone surrogate", `{"detail":"\ud800"}`, "detail: not valid UTF-8"},
		{"unknown field", `{"detail":"a","extra":1}`, `proto: (line 1:15): unknown field "extra"`},
		{"huge number", `{"code":99999999999999999999}`, "proto: (line 1:9): invalid value for int32 field code: 99999999999999999999"},
		{"truncated", `{"detail":`, "malformed JSON body: unexpected EOF"},
		{"not JSON", `}`, "malformed JSON body: invalid character '}' looking for beginning of value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := strictJSON(buffer{bytes.NewBufferString(tc.body)})
			var got outcome.Error
			err := c.ReadBody(&got)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("ReadBody(%q) = %v", tc.body, err)
				}
				return
			}
			e := merrors.FromError(err)
			if e.Code != 400 || e.Detail != tc.want {
				t.Errorf("ReadBody(%q) = %v; want 400 %q", tc.body, err, tc.want)
			}
		})
	}
	// The stream's end is go-micro's to handle, as before.
	if err := strictJSON(buffer{new(bytes.Buffer)}).ReadBody(&outcome.Error{}); !errors.Is(err, io.EOF) {
		t.Errorf("empty stream: %v, want io.EOF", err)
	}
}
