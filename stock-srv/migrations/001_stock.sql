CREATE TABLE stock (
    id          bigserial PRIMARY KEY,
    name        text        NOT NULL CHECK (name <> ''),
    count       bigint      NOT NULL CHECK (count > 0),
    sale        bigint      NOT NULL DEFAULT 0,
    create_time timestamptz NOT NULL DEFAULT now(),
    version     bigint      NOT NULL DEFAULT 0,
    start_time  timestamptz,
    end_time    timestamptz,
    -- The last line of defence against overselling: no statement can break it.
    CHECK (sale >= 0 AND sale <= count),
    CHECK (start_time IS NULL OR end_time IS NULL OR end_time > start_time)
);

-- One row per request id that reached Sell: the answer it got, so a retry gets the same
-- answer and takes stock once. Live granted rows are exactly the units sold.
CREATE TABLE stock_sale (
    request_id  text        PRIMARY KEY,
    sid         bigint      NOT NULL REFERENCES stock (id),
    user_id     bigint      NOT NULL,
    granted     boolean     NOT NULL,
    reason      text        NOT NULL DEFAULT '',
    released    boolean     NOT NULL DEFAULT false,
    create_time timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX stock_sale_live ON stock_sale (sid) WHERE granted AND NOT released;
