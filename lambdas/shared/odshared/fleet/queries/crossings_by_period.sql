-- Crossings per {period} per device, line, direction and class; each crossing once (by event_id).
-- Parameters: arrival partition from (yyyy/MM/dd/HH), thing, thing (the device partitions read), since, until
-- (ISO 8601), thing, thing, line, line ('' = all).
SELECT thing, line, direction, "class", date_trunc('{period}', sent_at) AS period, count(*) AS crossings
FROM {crossings}
WHERE sent_at >= from_iso8601_timestamp(?) AND sent_at < from_iso8601_timestamp(?)
  AND (? = '' OR thing = ?) AND (? = '' OR line = ?)
GROUP BY 1, 2, 3, 4, 5
ORDER BY period, thing, line, direction, "class"
