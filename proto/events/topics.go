package eventpb

import (
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// The public subjects of the events, both on the JetStream stream Stream.
const (
	// PayTopic carries PayEvent: an order was created; make its payment.
	PayTopic = "payment.payevent"
	// ExpiredTopic carries ExpiredEvent: a payment expired unpaid; cancel its order and
	// return its unit.
	ExpiredTopic = "payment.expired"
	// Stream is the JetStream stream that stores every topic.
	Stream = "SECBUY_PAYMENT"
)

// PayMsgID is the JetStream dedup id of order orderID's PayEvent: publishing it twice
// stores it once.
func PayMsgID(orderID int64) string { return "order-" + strconv.FormatInt(orderID, 10) }

// ExpiredMsgID is the JetStream dedup id of order orderID's ExpiredEvent.
func ExpiredMsgID(orderID int64) string { return "expired-" + strconv.FormatInt(orderID, 10) }

// Marshal writes ev as the JSON payload publishers put on a topic.
func Marshal(ev proto.Message) (string, error) {
	b, err := protojson.Marshal(ev)
	return string(b), err
}

// Unmarshal reads a topic's payload into ev, ignoring fields it does not know, so that
// publishers can add some.
func Unmarshal(data []byte, ev proto.Message) error {
	return protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(data, ev)
}
