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
-- stretch kept so far). Only the other hosts go through the windows.
WITH runs AS (
    SELECT host_id, run_start, run_end, run_time
    FROM kept
    GROUP BY host_id, run_start, run_end, run_time
), counted AS (
    SELECT host_id, count(*) AS runs
    FROM runs
    GROUP BY host_id
), one_run AS (
    SELECT r.host_id, r.run_start, r.run_end, r.run_time,
           r.run_start AS new_start, r.run_end AS new_end, r.run_time AS new_time
    FROM runs r
    JOIN counted c ON r.host_id = c.host_id AND c.runs = 1
), following AS (
    -- As the windows below would have it: one session when the second run does not
    -- count again from 0 or 1, and the first does not, or came first in event time.
    SELECT a.host_id, a.run_start AS first_start, a.run_end AS first_end, a.run_time AS first_time,
           b.run_start AS second_start, b.run_end AS second_end, b.run_time AS second_time
    FROM runs a
    JOIN runs b ON a.host_id = b.host_id AND b.run_start = a.run_end + 1
    JOIN counted c ON a.host_id = c.host_id AND c.runs = 2
    WHERE b.run_start > 1 AND (a.run_start > 1 OR a.run_time <= b.run_time)
), two_runs AS (
    SELECT host_id, first_start AS run_start, first_end AS run_end, first_time AS run_time,
           first_start AS new_start, second_end AS new_end, least(first_time, second_time) AS new_time
    FROM following
    UNION ALL
    SELECT host_id, second_start AS run_start, second_end AS run_end, second_time AS run_time,
           first_start AS new_start, second_end AS new_end, least(first_time, second_time) AS new_time
    FROM following
), other AS (
    SELECT r.*
    FROM runs r
    JOIN counted c ON r.host_id = c.host_id AND c.runs > 1
    WHERE r.host_id NOT IN (SELECT host_id FROM following)
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
    UNION ALL
    SELECT * FROM one_run
    UNION ALL
    SELECT * FROM two_runs
)
SELECT k.time, k.host_id, k.event_id, k.event_name, k.event_sequence,
       m.new_start AS run_start, m.new_end AS run_end, m.new_time AS run_time,
       CASE WHEN k.event_sequence = m.new_start THEN k.due_at END AS due_at,
       k.keep_until
FROM kept k
JOIN merged m ON k.host_id = m.host_id AND k.run_start = m.run_start AND k.run_end = m.run_end
    AND k.run_time = m.run_time
WHERE k.event_sequence = m.new_start OR k.event_sequence = m.new_end
