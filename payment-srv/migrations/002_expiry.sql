-- Unpaid payments expire: the expiry loop finds them by age.
CREATE INDEX payments_unpaid ON payments (create_time) WHERE state = 0;

-- payment.expired events, written in the same transaction as the expiry they announce; the
-- relay publishes them to JetStream with msg_id as the dedup id, then sets sent_time. (Not
-- named outbox: order-srv's outbox may live in the same database.)
CREATE TABLE payment_outbox (
    id          bigserial   PRIMARY KEY,
    msg_id      text        NOT NULL UNIQUE,
    payload     jsonb       NOT NULL,
    create_time timestamptz NOT NULL DEFAULT now(),
    sent_time   timestamptz
);

CREATE INDEX payment_outbox_unsent ON payment_outbox (id) WHERE sent_time IS NULL;
