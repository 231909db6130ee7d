package handler

// Finished says whether the finisher has recorded every answer handed to it.
func (h *Order) Finished() bool { return h.finisher.idle() }
