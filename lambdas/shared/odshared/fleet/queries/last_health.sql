-- Every device's last health message: when, FPS, model, backend and precision, its last crossing's seq.
-- Parameters: arrival partition from (yyyy/MM/dd/HH).
SELECT thing, "timestamp" AS last_seen, fps, model, backend, "precision", counts_seq AS last_seq, delivery_failures,
       publish_retries, publish_errors
FROM (
    SELECT thing, "timestamp", fps, model, backend, "precision", counts_seq, delivery_failures, publish_retries,
           publish_errors,
           row_number() OVER (PARTITION BY thing ORDER BY sent_at DESC, body) AS newest
    FROM {health}
    WHERE dt >= ? AND malformed IS NULL
)
WHERE newest = 1
ORDER BY thing
