package handler

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"secbuy/basic/buyer"
	pb "secbuy/order-srv/proto/order"
)

// refreshBefore is how long before a sold-out snapshot lapses a press asks for the next
// one, so that a crowd that keeps pressing is answered from memory throughout.
const refreshBefore = 250 * time.Millisecond

// soldOut is what this instance knows about sold-out commodities: per commodity, a
// snapshot from order-srv of the users who hold its units, and until when nobody else can
// get one (OrderService.Holders). Until then a press by anyone else is answered "sold out"
// from memory, with no Redis call and no RPC; a holder's press goes the whole way (it gets
// its order back, or "already bought"). A snapshot is only ever taken from Postgres's truth,
// through order-srv; when it lapses, presses go the whole way again until the next one.
type soldOut struct {
	holders func(ctx context.Context, sid int64) (*pb.HoldersResponse, error)
	timeout time.Duration
	now     func() time.Time

	mu      sync.Mutex
	snaps   map[int64]*snapshot
	loading map[int64]bool
}

// snapshot is one commodity's holders and how long the snapshot may be trusted.
type snapshot struct {
	users map[string]struct{}
	until time.Time
}

func newSoldOut(holders func(context.Context, int64) (*pb.HoldersResponse, error), timeout time.Duration, now func() time.Time) *soldOut {
	return &soldOut{holders: holders, timeout: timeout, now: now, snaps: map[int64]*snapshot{}, loading: map[int64]bool{}}
}

// refuse says whether user's press for commodity sid can be answered "sold out" now,
// from memory: the commodity is known sold out and user holds none of its units.
func (s *soldOut) refuse(sid int64, user string) bool {
	now := s.now()
	s.mu.Lock()
	snap := s.snaps[sid]
	if snap != nil && !now.Before(snap.until) {
		delete(s.snaps, sid) // lapsed: the presses go the whole way until the next one
		snap = nil
	}
	s.mu.Unlock()
	if snap == nil {
		return false
	}
	if snap.until.Sub(now) < refreshBefore {
		s.refresh(sid)
	}
	_, holder := snap.users[user]
	return !holder
}

// refresh asks order-srv, in the background, for a new snapshot of commodity sid (one
// question at a time per commodity): when it is sold out, the snapshot is kept; when it is
// not, the old one is dropped.
func (s *soldOut) refresh(sid int64) {
	s.mu.Lock()
	if s.loading[sid] {
		s.mu.Unlock()
		return
	}
	s.loading[sid] = true
	s.mu.Unlock()
	go func() {
		// The snapshot's time counts from before the question: never longer than it holds.
		start := s.now()
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		rsp, err := s.holders(ctx, sid)
		cancel()
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.loading, sid)
		switch {
		case err != nil:
			slog.Debug("sold-out snapshot", "commodity", sid, "err", err)
		case rsp.GetSoldOut() && rsp.GetValidForMs() > 0:
			// buyers is every holder; users, the numeric ones, is all an order-srv from
			// before buyers were strings sends.
			users := make(map[string]struct{}, len(rsp.Buyers)+len(rsp.Users))
			for _, u := range rsp.Buyers {
				users[u] = struct{}{}
			}
			for _, u := range rsp.Users {
				users[buyer.FromID(u)] = struct{}{}
			}
			s.snaps[sid] = &snapshot{users: users, until: start.Add(time.Duration(rsp.ValidForMs) * time.Millisecond)}
		default:
			delete(s.snaps, sid)
		}
	}()
}
