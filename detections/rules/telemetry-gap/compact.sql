-- After each evaluation, runs of numbers that meet (in one producer session) merge
-- into one run: its first and last rows stay, with the merged bounds. A host's state
-- is then two rows per unbroken stretch, however its events were batched, and a run
-- whose start a late number joined to the one before is no run start any more (its
-- due_at cleared: there is no gap before it to judge).
WITH runs AS (
    SELECT host_id, run_start, run_end, min(time) AS run_time
    FROM kept
    GROUP BY host_id, run_start, run_end
), sessions AS (
    SELECT *,
           sum(CASE WHEN run_start <= 1 THEN 1 ELSE 0 END)
               OVER (PARTITION BY host_id ORDER BY run_time, run_start ROWS UNBOUNDED PRECEDING) AS session
    FROM runs
), reach AS (
    SELECT *,
           max(run_end) OVER (PARTITION BY host_id, session ORDER BY run_start, run_end
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reached
    FROM sessions
), islands AS (
    SELECT *,
           sum(CASE WHEN reached IS NULL OR run_start > reached + 1 THEN 1 ELSE 0 END)
               OVER (PARTITION BY host_id, session ORDER BY run_start, run_end ROWS UNBOUNDED PRECEDING) AS island
    FROM reach
), merged AS (
    SELECT host_id, run_start, run_end,
           min(run_start) OVER (PARTITION BY host_id, session, island) AS new_start,
           max(run_end) OVER (PARTITION BY host_id, session, island) AS new_end
    FROM islands
)
SELECT k.time, k.host_id, k.event_id, k.event_name, k.event_sequence,
       m.new_start AS run_start, m.new_end AS run_end,
       CASE WHEN k.event_sequence = m.new_start THEN k.due_at END AS due_at,
       k.keep_until
FROM kept k
JOIN merged m ON k.host_id = m.host_id AND k.run_start = m.run_start AND k.run_end = m.run_end
WHERE k.event_sequence = m.new_start OR k.event_sequence = m.new_end
