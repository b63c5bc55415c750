-- Every crossing of the period for review: its event, what the device said, and the latest correction of it.
-- Parameters: arrival partition from (yyyy/MM/dd/HH), thing, thing (the device partitions read), the same
-- arrival partition from (the corrections' partitions read), since, until (ISO 8601), thing, thing, line, line
-- ('' = all),
-- event_id, event_id ('' = all). Each crossing once (by event_id), then each crossing a correction added; the period
-- and filters apply to what the device said (an added crossing: to what the correction says).
WITH crossings AS (
    SELECT thing, event_id, line, direction, "class", "timestamp", sent_at, camera FROM {crossings}
),
amendments AS (
    SELECT * FROM {corrections} WHERE dt >= ? AND malformed IS NULL
),
latest AS (
    SELECT thing, event_id, correction_id, kind, line, direction, "class", "timestamp", sent_at, recorded_at,
           recorded_by, reason
    FROM (
        SELECT thing, event_id, correction_id, kind, line, direction, "class", "timestamp", sent_at, recorded_at,
               recorded_by, reason,
               row_number() OVER (PARTITION BY thing, event_id ORDER BY recorded_at DESC, correction_id DESC) AS newest
        FROM amendments
    )
    WHERE newest = 1
),
added AS (
    SELECT thing, event_id, line, direction, "class", "timestamp", sent_at
    FROM (
        SELECT thing, event_id, line, direction, "class", "timestamp", sent_at,
               row_number() OVER (PARTITION BY thing, event_id ORDER BY recorded_at, correction_id) AS oldest
        FROM amendments
        WHERE kind = 'missed'
    )
    WHERE oldest = 1
),
listed AS (
    SELECT 'device' AS origin, thing, event_id, line, direction, "class", "timestamp", sent_at, camera FROM crossings
    UNION ALL
    SELECT 'correction' AS origin, thing, event_id, line, direction, "class", "timestamp", sent_at,
           CAST(NULL AS varchar) AS camera
    FROM added
)
SELECT l.event_id, l.thing, l.line, l."class", l.direction, l."timestamp", l.camera, l.origin,
       k.correction_id, k.kind AS correction, k."class" AS corrected_class, k.direction AS corrected_direction,
       k.recorded_by, k.recorded_at, k.reason
FROM listed l
LEFT JOIN latest k ON k.thing = l.thing AND k.event_id = l.event_id
WHERE l.sent_at >= from_iso8601_timestamp(?) AND l.sent_at < from_iso8601_timestamp(?)
  AND (? = '' OR l.thing = ?) AND (? = '' OR l.line = ?) AND (? = '' OR l.event_id = ?)
ORDER BY l.sent_at, l.thing, l.event_id
