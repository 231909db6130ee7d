package main

import (
	"errors"
	"testing"

	"secbuy/test/load"
)

// A sample counts on the progress line as load.Reply.Outcome counts the same reply.
func TestSampleOutcome(t *testing.T) {
	tests := []struct {
		name string
		s    sample
		want load.Outcome
	}{
		{"bought", sample{status: 200, reason: reasonOK}, load.OutcomeOK},
		{"pending", sample{status: 202, reason: reasonPending}, load.OutcomePending},
		{"sold out", sample{status: 409, reason: reasonSoldOut}, load.OutcomeSoldOut},
		{"busy", sample{status: 503, reason: intern("busy, try again")}, load.OutcomeBusy},
		{"slow down", sample{status: 429, reason: intern("slow down")}, load.OutcomeBusy},
		{"already bought", sample{status: 409, reason: intern("already bought")}, load.OutcomeOther},
		{"no answer", sample{failed: true, reason: reasonError}, load.OutcomeOther},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.outcome(); got != tc.want {
				t.Errorf("outcome = %v, want %v", got, tc.want)
			}
			r := load.Reply{Status: int(tc.s.status), Reason: reasonName(tc.s.reason)}
			if tc.s.failed {
				r.Err = errors.New("no answer")
			}
			if got := r.Outcome(); got != tc.want {
				t.Errorf("load.Reply.Outcome = %v, want %v", got, tc.want)
			}
		})
	}
}
