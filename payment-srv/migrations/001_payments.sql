-- One payment per order: sid is the order id, and its uniqueness is what makes a
-- redelivered payment.payevent change nothing.
CREATE TABLE payments (
    id           bigserial   PRIMARY KEY,
    sid          bigint      NOT NULL UNIQUE,
    commodity_id bigint      NOT NULL,
    name         text        NOT NULL DEFAULT '',
    -- 0 unpaid, 1 paid, 2 expired.
    state        smallint    NOT NULL DEFAULT 0 CHECK (state IN (0, 1, 2)),
    create_time  timestamptz NOT NULL DEFAULT now(),
    user_id      bigint      NOT NULL,
    paid_time    timestamptz,
    CHECK ((state = 1) = (paid_time IS NOT NULL))
);

CREATE INDEX payments_commodity ON payments (commodity_id);
