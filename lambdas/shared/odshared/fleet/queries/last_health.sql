-- Every device's last health message: when, FPS, model, backend and precision, its last crossing's seq.
-- Parameters: arrival partition from (yyyy/MM/dd/HH).
SELECT thing, max("timestamp") AS last_seen, max_by(fps, "timestamp") AS fps, max_by(model, "timestamp") AS model,
       max_by(runtime.backend, "timestamp") AS backend, max_by(runtime.precision, "timestamp") AS "precision",
       max_by(counts.seq, "timestamp") AS last_seq, max_by(publish_errors, "timestamp") AS publish_errors
FROM health
WHERE dt >= ? AND type = 'health'
GROUP BY thing
ORDER BY thing
