-- Messages of the ledger it cannot count, each named: its table, S3 object and text, and why.
-- Parameters: arrival partition from (yyyy/MM/dd/HH), the same again twice (counts, health, then what Firehose
-- could not partition or convert for either: a line that is not JSON or has no thing, a value where an object
-- belongs).
SELECT 'counts' AS ledger, dt, source, malformed AS reason, body
FROM {counts}
WHERE dt >= ? AND malformed IS NOT NULL
UNION ALL
SELECT 'health' AS ledger, dt, source, malformed AS reason, body
FROM {health}
WHERE dt >= ? AND malformed IS NOT NULL
UNION ALL
SELECT ledger, dt, source, reason, body
FROM {rejected}
WHERE dt >= ?
ORDER BY ledger, dt, source, body
