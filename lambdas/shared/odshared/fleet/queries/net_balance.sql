-- The net balance per device, line and class over the period: in, out, and in - out (what is on the in-side).
-- Parameters: arrival partition from (yyyy/MM/dd/HH), thing, thing (the device partitions read), since, until
-- (ISO 8601), thing, thing, line, line ('' = all).
SELECT thing, line, "class", count_if(direction = 'in') AS crossed_in, count_if(direction = 'out') AS crossed_out,
       count_if(direction = 'in') - count_if(direction = 'out') AS net
FROM {crossings}
WHERE sent_at >= from_iso8601_timestamp(?) AND sent_at < from_iso8601_timestamp(?)
  AND (? = '' OR thing = ?) AND (? = '' OR line = ?)
GROUP BY 1, 2, 3
ORDER BY thing, line, "class"
