-- Lines of the ledger that are no message it can count, each named: its table, S3 object and text, and why.
-- Parameters: arrival partition from (yyyy/MM/dd/HH), the same again (counts, then health).
SELECT 'counts' AS ledger, dt, source, malformed AS reason, body
FROM {counts}
WHERE dt >= ? AND malformed IS NOT NULL
UNION ALL
SELECT 'health' AS ledger, dt, source, malformed AS reason, body
FROM {health}
WHERE dt >= ? AND malformed IS NOT NULL
ORDER BY ledger, dt, source, body
