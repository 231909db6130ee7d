-- An order's reason is stored as a code (the name of its outcome.Reason), not as the
-- English words, which are made at the HTTP edge.
UPDATE orders SET reason = CASE reason
    WHEN 'sold out' THEN 'SOLD_OUT'
    WHEN 'not started' THEN 'NOT_STARTED'
    WHEN 'ended' THEN 'ENDED'
    WHEN 'commodity not found' THEN 'COMMODITY_NOT_FOUND'
    WHEN 'payment expired' THEN 'PAYMENT_EXPIRED'
    WHEN 'refused' THEN 'REASON_UNSPECIFIED'
    ELSE reason END
WHERE reason <> '';
