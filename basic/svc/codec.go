package svc

import (
	"bytes"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/go-json-experiment/json/jsontext"
	"go-micro.dev/v6/codec"
	mjson "go-micro.dev/v6/codec/json"
	merrors "go-micro.dev/v6/errors"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// strictJSON is the codec of the RPC server's JSON requests (`go tool micro call`, which
// reaches an RPC without any web edge): go-micro's own, whose protojson already refuses
// invalid UTF-8, repeated and unknown fields and numbers that do not fit, but answers with
// a bare error that has no status. Here such a body is a 400 naming the field, as the web
// edge answers the same mistake, and the handler never runs.
func strictJSON(rwc io.ReadWriteCloser) codec.Codec {
	return strictCodec{mjson.NewCodec(rwc).(*mjson.Codec)}
}

type strictCodec struct{ *mjson.Codec }

func (c strictCodec) ReadBody(b any) error {
	m, ok := b.(proto.Message)
	if !ok {
		return c.Codec.ReadBody(b)
	}
	var raw stdjson.RawMessage
	if err := c.Decoder.Decode(&raw); err != nil {
		var syn *stdjson.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) { // {"name": or a truncated body
			return badBody(fmt.Errorf("malformed JSON body: %w", err))
		}
		return err
	}
	if err := jsontext.NewDecoder(bytes.NewReader(raw)).SkipValue(); err != nil {
		return badBody(err)
	}
	if err := protojson.Unmarshal(raw, m); err != nil {
		return badBody(err)
	}
	return nil
}

// badBody is the 400 of a refused request body: a repeated field or invalid UTF-8 named
// by its path ("name: duplicate key"), anything else in protojson's words, shown as
// printable ASCII only.
func badBody(err error) error {
	detail := err.Error()
	var syn *jsontext.SyntacticError
	if errors.As(err, &syn) {
		where := strings.ReplaceAll(strings.TrimPrefix(string(syn.JSONPointer), "/"), "/", ".")
		if where == "" {
			where = "body"
		}
		switch msg := syn.Err.Error(); {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			detail = where + ": duplicate key"
		case strings.Contains(msg, "invalid UTF-8"), strings.Contains(msg, "surrogate"):
			detail = where + ": not valid UTF-8"
		default:
			detail = "malformed JSON body: " + msg
		}
	}
	return merrors.BadRequest("go.micro.server", "%s", printable(detail))
}

// printable keeps at most 200 characters of s, with a space for a non-breaking one (which
// protojson puts in its messages at random) and '?' for anything else but printable ASCII.
func printable(s string) string {
	r := []rune(s)
	if len(r) > 200 {
		r = r[:200]
	}
	for i, c := range r {
		switch {
		case c == '\u00a0':
			r[i] = ' '
		case c < 0x20 || c > 0x7e:
			r[i] = '?'
		}
	}
	return string(r)
}
