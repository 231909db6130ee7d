package handler

import "time"

// SetClock makes h read the time from now: tests move the clock instead of waiting.
func (h *Handler) SetClock(now func() time.Time) { h.soldOut.now = now }

// KnowsSoldOut says whether h holds a live sold-out snapshot of commodity sid.
func (h *Handler) KnowsSoldOut(sid int64) bool {
	h.soldOut.mu.Lock()
	defer h.soldOut.mu.Unlock()
	snap := h.soldOut.snaps[sid]
	return snap != nil && h.soldOut.now().Before(snap.until)
}
