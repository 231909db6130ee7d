package handler

import (
	"context"
	"errors"
	"strings"
	"testing"

	pb "secbuy/stock-srv/proto/stock"
)

func TestReleaseRPC(t *testing.T) {
	t.Parallel()
	tests := []struct {
		rid          string
		wantCode     int32 // 0: success
		wantReleased bool
		wantCalled   bool
	}{
		{"u1:a", 0, true, true},
		{"again", 0, false, true},
		{"unknown", 404, false, true},
		{"refused", 409, false, true},
		{"", 400, false, false},
		{strings.Repeat("x", MaxRequestID+1), 400, false, false},
		{"a\x00b", 400, false, false},
		{"a\xffb", 400, false, false},
	}
	for _, tc := range tests {
		f := &fakeStore{}
		var out pb.ReleaseResponse
		if err := newHandler(t, f).Release(context.Background(), &pb.ReleaseRequest{RequestId: tc.rid}, &out); err != nil {
			t.Fatalf("Release(%q): rpc error %v", tc.rid, err)
		}
		if out.Error.GetCode() != tc.wantCode || out.Success != (tc.wantCode == 0) || out.Released != tc.wantReleased {
			t.Errorf("Release(%q) = %v; want code %d, released %v", tc.rid, &out, tc.wantCode, tc.wantReleased)
		}
		if called := f.calls == 1; called != tc.wantCalled {
			t.Errorf("Release(%q): store called %d times; want called %v", tc.rid, f.calls, tc.wantCalled)
		}
	}

	f := &fakeStore{err: errors.New("conn refused")}
	var out pb.ReleaseResponse
	if err := newHandler(t, f).Release(context.Background(), &pb.ReleaseRequest{RequestId: "r"}, &out); err == nil || out.Success {
		t.Errorf("failed transaction: %v %v; want an RPC error", &out, err)
	}
}

func TestReleaseBatchRPC(t *testing.T) {
	t.Parallel()
	in := &pb.ReleaseBatchRequest{Items: []*pb.ReleaseRequest{
		{RequestId: "a"}, {RequestId: ""}, {RequestId: "unknown"}, nil, {RequestId: "again"}, {RequestId: "refused"},
	}}
	f := &fakeStore{}
	var out pb.ReleaseBatchResponse
	if err := newHandler(t, f).ReleaseBatch(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	wantCodes := []int32{0, 400, 404, 400, 0, 409}
	if len(out.Items) != len(wantCodes) {
		t.Fatalf("%d answers for %d items", len(out.Items), len(wantCodes))
	}
	for i, r := range out.Items {
		if r.Error.GetCode() != wantCodes[i] || r.Success != (wantCodes[i] == 0) {
			t.Errorf("item %d: %v; want code %d", i, r, wantCodes[i])
		}
	}
	if !out.Items[0].Released || out.Items[4].Released || out.Items[0].CommodityId != 7 {
		t.Errorf("answers %v; want item 0 released now (commodity 7), item 4 released before", out.Items)
	}
	if f.calls != 1 || strings.Join(f.released, ",") != "a,unknown,again,refused" {
		t.Errorf("store got %d calls with %v; want one call with the four valid ids", f.calls, f.released)
	}

	f = &fakeStore{}
	big := &pb.ReleaseBatchRequest{}
	for range MaxRelease + 1 {
		big.Items = append(big.Items, &pb.ReleaseRequest{RequestId: "r"})
	}
	out = pb.ReleaseBatchResponse{}
	if err := newHandler(t, f).ReleaseBatch(context.Background(), big, &out); err != nil || len(out.Items) != MaxRelease+1 || f.calls != 0 {
		t.Fatalf("oversized batch: %d answers, %v, %d store calls; want a 400 each", len(out.Items), err, f.calls)
	}
	for _, r := range out.Items {
		if r.Error.GetCode() != 400 {
			t.Fatalf("oversized batch answered %v; want 400", r)
		}
	}
}
