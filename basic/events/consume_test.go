package events

import (
	"context"
	"errors"
	"strconv"
	"testing"

	"secbuy/basic/testutil"
)

// Each message is settled by its own verdict: done is acknowledged, a permanent failure
// terminated, any other failure redelivered; a payload that does not decode never reaches
// Apply and is terminated.
func TestHandleSettlesByVerdict(t *testing.T) {
	t.Parallel()
	var applied []int
	c := NewConsumer("test", "t.x", func(b []byte) (int, error) { return strconv.Atoi(string(b)) },
		func(_ context.Context, evs []int) []error {
			applied = append(applied, evs...)
			errs := make([]error, len(evs))
			for i, ev := range evs {
				switch ev % 3 {
				case 1:
					errs[i] = Permanent(errors.New("never"))
				case 2:
					errs[i] = errors.New("later")
				}
			}
			return errs
		})
	ms := []*testutil.Msg{testutil.NewMsg([]byte("3")), testutil.NewMsg([]byte("4")), testutil.NewMsg([]byte("x")),
		testutil.NewMsg([]byte("5")), testutil.NewMsg([]byte("6"))}
	c.Handle(testutil.Msgs(ms...))
	if got, want := testutil.Settled(ms...), "ack term term nak ack"; got != want {
		t.Errorf("settled %q; want %q", got, want)
	}
	if len(applied) != 4 {
		t.Errorf("Apply was given %v; want the 4 events that decode", applied)
	}
}

// A nil verdict is all done; a verdict of the wrong length redelivers the whole batch.
func TestHandleWholeBatch(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name    string
		verdict []error
		want    string
	}{
		{"all done", nil, "ack ack"},
		{"all failed", Each(2, errors.New("db down")), "nak nak"},
		{"wrong count", []error{nil}, "nak nak"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cons := NewConsumer("test", "t.x", func(b []byte) (string, error) { return string(b), nil },
				func(context.Context, []string) []error { return c.verdict })
			a, b := testutil.NewMsg([]byte("a")), testutil.NewMsg([]byte("b"))
			cons.Handle(testutil.Msgs(a, b))
			if got := testutil.Settled(a, b); got != c.want {
				t.Errorf("settled %q; want %q", got, c.want)
			}
		})
	}
}
