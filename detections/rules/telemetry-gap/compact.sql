-- After each evaluation, runs of numbers that meet (in one producer session) merge
-- into one run: its first and last rows stay, with the merged bounds. A host's state
-- is then two rows per unbroken stretch, however its events were batched, and a run
-- whose start a late number joined to the one before is no run start any more (its
-- due_at cleared: there is no gap before it to judge). A merged run's run_time is the
-- earliest of its runs'; runs of two sessions with the same bounds stay apart by it.
--
-- Window functions cost per host, and most evaluated hosts are one of two simple
-- shapes, merged here without them: one run (nothing to merge), or two where the
-- second follows on the first in the same producer session (a batch continuing the
-- stretch kept so far), both told by one aggregate per host. Only the other hosts go
-- through the windows. DataFusion computes a CTE again for each place that reads it,
-- so the simple hosts are told in one pass (detections/README.md, "Read a costly CTE
-- once").
WITH runs AS (
    SELECT host_id, run_start, run_end, run_time
    FROM kept
    GROUP BY host_id, run_start, run_end, run_time
), shapes AS (
    -- A host's first and last run in number order. Two runs with the same start
    -- never follow one another, whichever of them is taken for which.
    SELECT host_id, count(*) AS runs,
           min(run_start) AS first_start, max(run_start) AS second_start,
           first_value(run_end ORDER BY run_start) AS first_end,
           last_value(run_end ORDER BY run_start) AS second_end,
           first_value(run_time ORDER BY run_start) AS first_time,
           last_value(run_time ORDER BY run_start) AS second_time
    FROM runs
    GROUP BY host_id
), simple AS (
    -- As the windows below would have it: two runs are one session when the second
    -- does not count again from 0 or 1, and the first does not, or came first in
    -- event time.
    SELECT host_id, first_start AS new_start,
           CASE WHEN runs = 1 THEN first_end ELSE second_end END AS new_end,
           CASE WHEN runs = 1 THEN first_time ELSE least(first_time, second_time) END AS new_time
    FROM shapes
    WHERE runs = 1
       OR (runs = 2 AND second_start = first_end + 1 AND second_start > 1
           AND (first_start > 1 OR first_time <= second_time))
), other AS (
    SELECT r.*
    FROM runs r
    WHERE r.host_id NOT IN (SELECT host_id FROM simple)
), sessions AS (
    SELECT *,
           sum(CASE WHEN run_start <= 1 THEN 1 ELSE 0 END)
               OVER (PARTITION BY host_id ORDER BY run_time, run_start ROWS UNBOUNDED PRECEDING) AS session
    FROM other
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
    SELECT host_id, run_start, run_end, run_time,
           min(run_start) OVER (PARTITION BY host_id, session, island) AS new_start,
           max(run_end) OVER (PARTITION BY host_id, session, island) AS new_end,
           min(run_time) OVER (PARTITION BY host_id, session, island) AS new_time
    FROM islands
)
SELECT k.time, k.host_id, k.event_id, k.event_name, k.event_sequence,
       m.new_start AS run_start, m.new_end AS run_end, m.new_time AS run_time,
       CASE WHEN k.event_sequence = m.new_start THEN k.due_at END AS due_at,
       k.keep_until
FROM kept k
JOIN merged m ON k.host_id = m.host_id AND k.run_start = m.run_start AND k.run_end = m.run_end
    AND k.run_time = m.run_time
WHERE k.event_sequence = m.new_start OR k.event_sequence = m.new_end
UNION ALL
-- A simple host's runs all become the one it merges them into.
SELECT k.time, k.host_id, k.event_id, k.event_name, k.event_sequence,
       s.new_start AS run_start, s.new_end AS run_end, s.new_time AS run_time,
       CASE WHEN k.event_sequence = s.new_start THEN k.due_at END AS due_at,
       k.keep_until
FROM kept k
JOIN simple s ON k.host_id = s.host_id
WHERE k.event_sequence = s.new_start OR k.event_sequence = s.new_end
