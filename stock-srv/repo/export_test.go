package repo

import "time"

// SetReturnDelay changes how long a unit given back waits before it is on sale again, so a
// test need not wait the production second.
func (r *Repo) SetReturnDelay(d time.Duration) { r.returnDelay = d }
