-- Missing crossings per device and stream: seq ranges neither in the ledger nor still in the device's outbox.
-- Parameters: thing, thing (the device partitions read), health reports sent before (ISO 8601), thing, thing (the
-- same), thing, thing ('' = all). The whole ledger: a gap at a
-- stream's start shows only beside its first seq. Sent in order, one at a time, so a seq below one received, or
-- below the oldest its outbox still held (pending: the OLDEST are kept; after an overflow the newest are lost),
-- or up to the last given when none is pending, is not coming. reported_lost: what the device's outbox says it lost
-- over the stream's restarts (components before 1.9.0: since the process started).
WITH crossings AS (
    SELECT DISTINCT thing, stream, seq
    FROM {counts}
    WHERE malformed IS NULL AND (? = '' OR device = ?)
),
reports AS (
    SELECT thing, stream, last_seq, pending, oldest_seq, lost
    FROM (
        SELECT thing, counts_stream AS stream, counts_seq AS last_seq, outbox_pending AS pending,
               outbox_oldest_seq AS oldest_seq, coalesce(outbox_lost, counts_lost) AS lost,
               row_number() OVER (PARTITION BY thing, counts_stream ORDER BY sent_at DESC, counts_seq DESC, body)
                   AS newest
        FROM {health}
        WHERE malformed IS NULL AND counts_stream IS NOT NULL AND counts_seq IS NOT NULL
          AND sent_at < from_iso8601_timestamp(?) AND (? = '' OR device = ?)
    )
    WHERE newest = 1
),
horizons AS (
    -- the first seq not settled: the oldest pending, else the one after the last; pending with no oldest named
    -- (older device code): none from this report
    SELECT thing, stream, last_seq, pending, lost,
           CASE WHEN coalesce(pending, 0) = 0 THEN last_seq + 1 ELSE coalesce(oldest_seq, 1) END AS horizon
    FROM reports
),
steps AS (
    SELECT thing, stream, seq,
           lag(seq, 1, CAST(0 AS bigint)) OVER (PARTITION BY thing, stream ORDER BY seq) AS previous
    FROM (
        SELECT thing, stream, seq FROM crossings
        UNION ALL
        SELECT thing, stream, horizon AS seq FROM horizons
    )
)
SELECT s.thing, s.stream, s.previous + 1 AS first_missing, s.seq - 1 AS last_missing,
       s.seq - s.previous - 1 AS missing, h.last_seq AS reported_seq, h.pending AS reported_pending,
       h.lost AS reported_lost
FROM steps s
LEFT JOIN horizons h ON h.thing = s.thing AND h.stream = s.stream
WHERE s.seq - s.previous > 1 AND (? = '' OR s.thing = ?)
ORDER BY s.thing, s.stream, first_missing
