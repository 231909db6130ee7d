-- A commodity may be sold only to buyers with a ticket from order-web (GET /order/ticket,
-- issued once its sale window is open): order-web refuses a press without one. stock_now
-- gains the column at its end (CREATE OR REPLACE VIEW may only add columns there).
ALTER TABLE stock ADD COLUMN ticket_required boolean NOT NULL DEFAULT false;

CREATE OR REPLACE VIEW stock_now AS
SELECT s.id, s.name, s.count, s.create_time, s.version, s.start_time, s.end_time, s.buckets,
    s.sale + COALESCE(b.sale, 0) AS sale,
    CASE WHEN s.buckets = 1 THEN s.held ELSE COALESCE(b.held, 0) END AS held,
    CASE WHEN s.buckets = 1 THEN s.held_until ELSE b.held_until END AS held_until,
    s.ticket_required
FROM stock s
LEFT JOIN LATERAL (
    SELECT sum(sale) AS sale, sum(CASE WHEN held_until > now() THEN held ELSE 0 END) AS held,
        max(CASE WHEN held_until > now() THEN held_until END) AS held_until
    FROM stock_bucket WHERE sid = s.id
) b ON s.buckets > 1;
