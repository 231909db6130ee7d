-- Stock buckets: a hot commodity's count may be split over several rows, so that several
-- grants can be taken at once, one row each. A commodity of one bucket (the default) is
-- sold from its stock row as before and has no stock_bucket rows; one of K > 1 buckets is
-- sold from its K stock_bucket rows, and its stock row's sale and held stay 0. stock_now
-- reads either kind the same way.
ALTER TABLE stock
    ADD COLUMN buckets int NOT NULL DEFAULT 1 CHECK (buckets BETWEEN 1 AND 64);

CREATE TABLE stock_bucket (
    sid        bigint NOT NULL REFERENCES stock (id),
    n          int    NOT NULL,
    count      bigint NOT NULL CHECK (count >= 0),
    sale       bigint NOT NULL DEFAULT 0,
    held       bigint NOT NULL DEFAULT 0,
    held_until timestamptz,
    PRIMARY KEY (sid, n),
    -- The last line of defence against overselling, per bucket: the buckets' counts add up
    -- to the commodity's.
    CHECK (sale >= 0 AND held >= 0 AND sale + held <= count)
);

-- The bucket a granted sale took its unit from (NULL: the stock row), where a release
-- gives it back.
ALTER TABLE stock_sale ADD COLUMN bucket int;

-- A commodity as sold: for one of several buckets, their sales and their holds (active now)
-- added up, the latest hold's end.
CREATE VIEW stock_now AS
SELECT s.id, s.name, s.count, s.create_time, s.version, s.start_time, s.end_time, s.buckets,
    s.sale + COALESCE(b.sale, 0) AS sale,
    CASE WHEN s.buckets = 1 THEN s.held ELSE COALESCE(b.held, 0) END AS held,
    CASE WHEN s.buckets = 1 THEN s.held_until ELSE b.held_until END AS held_until
FROM stock s
LEFT JOIN LATERAL (
    SELECT sum(sale) AS sale, sum(CASE WHEN held_until > now() THEN held ELSE 0 END) AS held,
        max(CASE WHEN held_until > now() THEN held_until END) AS held_until
    FROM stock_bucket WHERE sid = s.id
) b ON s.buckets > 1;
