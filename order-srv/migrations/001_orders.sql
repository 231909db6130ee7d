-- One row per request id that reached CreateOrder. An order starts pending and ends
-- created (the stock was granted) or failed (refused, with the reason); a created order
-- may later be cancelled.
CREATE TABLE orders (
    id          bigserial   PRIMARY KEY,
    sid         bigint      NOT NULL CHECK (sid > 0),
    name        text        NOT NULL DEFAULT '',
    create_time timestamptz NOT NULL DEFAULT now(),
    user_id     bigint      NOT NULL CHECK (user_id > 0),
    request_id  text        NOT NULL UNIQUE CHECK (request_id <> ''),
    state       text        NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'created', 'failed', 'cancelled')),
    reason      text        NOT NULL DEFAULT '',
    update_time timestamptz NOT NULL DEFAULT now()
);

-- One live order per user and commodity, whatever races: the database says no.
CREATE UNIQUE INDEX orders_one_live ON orders (user_id, sid) WHERE state IN ('pending', 'created');
CREATE INDEX orders_pending ON orders (id) WHERE state = 'pending';
CREATE INDEX orders_sid ON orders (sid);

-- Events written in the same transaction as the state change they announce; the relay
-- publishes them to JetStream with msg_id as the dedup id, then sets sent_time.
CREATE TABLE outbox (
    id          bigserial   PRIMARY KEY,
    msg_id      text        NOT NULL UNIQUE,
    payload     jsonb       NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    sent_time   timestamptz
);

CREATE INDEX outbox_unsent ON outbox (id) WHERE sent_time IS NULL;
