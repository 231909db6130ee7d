-- The W3C traceparent of the press a payment event announces, sent in the NATS message's
-- headers so that payment-srv's span joins the buyer's trace ('' when it was not traced).
-- A constant default: the column is added without rewriting the table, and a binary from
-- before (which does not name it) goes on writing rows.
-- The ALTER takes the table's exclusive lock for an instant, but waits for it behind a
-- relay step of an older instance (up to seconds), and every insert would queue behind
-- it: give up soon instead (the service exits and is restarted, and tries again).
SET LOCAL lock_timeout = '2s';
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS traceparent text NOT NULL DEFAULT '';
