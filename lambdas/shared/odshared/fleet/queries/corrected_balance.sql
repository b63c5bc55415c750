-- The net balance per device, line and class as counted, as corrected, and the difference (corrected - counted).
-- Parameters: arrival partition from (yyyy/MM/dd/HH), thing, thing (the device partitions read), the same
-- arrival partition from (the corrections' partitions read), since, until (ISO 8601), thing, thing, line, line
-- ('' = all).
-- Each crossing once (by event_id); per event_id the latest correction wins (recorded_at, then correction_id), and
-- applies once however often the crossing was delivered. A correction of an event the ledger does not hold (nor a
-- correction added) changes nothing. The period and filters apply to the crossing as corrected.
WITH crossings AS (
    SELECT thing, event_id, line, direction, "class", sent_at FROM {crossings}
),
amendments AS (
    SELECT * FROM {corrections} WHERE dt >= ? AND malformed IS NULL
),
latest AS (
    SELECT thing, event_id, kind, line, direction, "class", sent_at
    FROM (
        SELECT thing, event_id, kind, line, direction, "class", sent_at,
               row_number() OVER (PARTITION BY thing, event_id ORDER BY recorded_at DESC, correction_id DESC) AS newest
        FROM amendments
    )
    WHERE newest = 1
),
added AS (
    SELECT DISTINCT thing, event_id FROM amendments WHERE kind = 'missed'
),
corrected AS (
    SELECT c.thing, c.line, c.direction, c."class", c.sent_at
    FROM crossings c
    LEFT JOIN latest k ON k.thing = c.thing AND k.event_id = c.event_id
    WHERE k.event_id IS NULL
    UNION ALL
    SELECT k.thing, k.line, k.direction, k."class", k.sent_at
    FROM latest k
    LEFT JOIN crossings c ON c.thing = k.thing AND c.event_id = k.event_id
    LEFT JOIN added a ON a.thing = k.thing AND a.event_id = k.event_id
    WHERE k.kind <> 'not_a_crossing' AND (c.event_id IS NOT NULL OR a.event_id IS NOT NULL)
),
bases AS (
    SELECT 'counted' AS basis, thing, line, direction, "class", sent_at FROM crossings
    UNION ALL
    SELECT 'corrected' AS basis, thing, line, direction, "class", sent_at FROM corrected
)
SELECT thing, line, "class",
       count_if(basis = 'counted' AND direction = 'in') AS counted_in,
       count_if(basis = 'counted' AND direction = 'out') AS counted_out,
       count_if(basis = 'counted' AND direction = 'in') - count_if(basis = 'counted' AND direction = 'out')
           AS counted_net,
       count_if(basis = 'corrected' AND direction = 'in') AS corrected_in,
       count_if(basis = 'corrected' AND direction = 'out') AS corrected_out,
       count_if(basis = 'corrected' AND direction = 'in') - count_if(basis = 'corrected' AND direction = 'out')
           AS corrected_net,
       (count_if(basis = 'corrected' AND direction = 'in') - count_if(basis = 'corrected' AND direction = 'out'))
           - (count_if(basis = 'counted' AND direction = 'in') - count_if(basis = 'counted' AND direction = 'out'))
           AS difference
FROM bases
WHERE sent_at >= from_iso8601_timestamp(?) AND sent_at < from_iso8601_timestamp(?)
  AND (? = '' OR thing = ?) AND (? = '' OR line = ?)
GROUP BY 1, 2, 3
ORDER BY thing, line, "class"
