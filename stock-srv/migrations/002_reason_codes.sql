-- A refused sale's reason is stored as a code (the name of its outcome.Reason), not as the
-- English words, which are made at the HTTP edge.
UPDATE stock_sale SET reason = CASE reason
    WHEN 'sold out' THEN 'SOLD_OUT'
    WHEN 'not started' THEN 'NOT_STARTED'
    WHEN 'ended' THEN 'ENDED'
    ELSE reason END
WHERE NOT granted;
