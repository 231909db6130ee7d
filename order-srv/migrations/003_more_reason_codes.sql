-- The reasons 002 left as words: a request id used for another purchase, and the bad-input
-- refusals stock-srv gave (an order-srv from before stored whatever words it was given).
UPDATE orders SET reason = CASE
    WHEN reason = 'request id already used for another purchase' THEN 'REQUEST_REUSED'
    WHEN reason IN ('requestId must be 1 to 128 bytes of UTF-8 text', 'id must be a positive integer',
                    'userId must be a positive integer', 'a batch holds at most 1000 items') THEN 'INVALID_INPUT'
    ELSE reason END
WHERE state = 'failed';
