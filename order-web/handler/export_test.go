package handler

import "time"

// SetClock makes h read the time from now: tests move the clock instead of waiting.
func (h *Handler) SetClock(now func() time.Time) { h.now = now }
