package handler

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	merrors "go-micro.dev/v6/errors"

	pb "secbuy/stock-srv/proto/stock"
)

// TestStorageRefusals: a database error is answered by its SQLSTATE's class, once, here:
// bad data 400 and a constraint 409 in the response (the client's fault, not resent), the
// database out of reach an RPC error (which callers answer "busy, try again").
func TestStorageRefusals(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code     string
		wantCode int32 // in the response; 0: an RPC error instead
	}{
		{"22021", 400}, {"22003", 400}, {"23505", 409}, {"23514", 409},
		{"57P01", 0}, {"08006", 0}, {"42601", 0},
	} {
		t.Run(tc.code, func(t *testing.T) {
			f := &fakeStore{err: fmt.Errorf("create commodity: %w", &pgconn.PgError{Code: tc.code, Message: "m"})}
			var out pb.Response
			err := newHandler(t, f).CreateCommodity(context.Background(), &pb.Commodity{Name: "x", Count: 1}, &out)
			switch {
			case tc.wantCode == 0 && (merrors.FromError(err).Detail != "storage unavailable" || out.Error != nil):
				t.Errorf("%s: err %v, response %v; want the RPC error \"storage unavailable\"", tc.code, err, &out)
			case tc.wantCode != 0 && (err != nil || out.Error.GetCode() != tc.wantCode || out.Success):
				t.Errorf("%s: err %v, response %v; want %d in the response", tc.code, err, &out, tc.wantCode)
			}
		})
	}
}
