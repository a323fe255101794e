-- Each run of consecutive numbers within one producer session becomes two kept rows
-- (its first and last event), with the run's bounds and its first event time
-- (run_time: with the bounds, what tells the runs of two sessions apart).
--
-- Most hosts send an unbroken stretch of numbers between two evaluations, none from 0
-- or 1 (no restart) and none twice, its lowest number their earliest event and its
-- highest their latest: one run, found with one hash aggregate per host (its bounds,
-- that no number between them is missing, and the events at both ends). Only the
-- other hosts need the sorts that split their events into sessions and rank their
-- numbers, which cost about a third of the rule on a busy fleet (docs/performance.md).
-- DataFusion computes a CTE again for each place that reads it, so the costly ones
-- here are read once or twice (detections/README.md, "Read a costly CTE once").
WITH hosts AS (
    SELECT host_id, min(event_sequence) AS lo, max(event_sequence) AS hi,
           count(DISTINCT event_sequence) AS numbers, count(*) AS events,
           min(time) AS first_time, max(time) AS last_time,
           first_value(time ORDER BY event_sequence) AS lo_time,
           first_value(event_id ORDER BY event_sequence) AS lo_id,
           first_value(event_name ORDER BY event_sequence) AS lo_name,
           last_value(time ORDER BY event_sequence) AS hi_time,
           last_value(event_id ORDER BY event_sequence) AS hi_id,
           last_value(event_name ORDER BY event_sequence) AS hi_name
    FROM events
    WHERE event_sequence IS NOT NULL
    GROUP BY host_id
), unbroken AS (
    -- One stretch, none sent twice (so the events at its ends are single), none from
    -- 0 or 1; and its first number is its earliest event and its last number its
    -- latest: a restart whose 0 or 1 came in another batch shows as numbers falling
    -- in time (an old session's 4, then the new one's 2 and 3 look like one stretch 2-4).
    SELECT * FROM hosts
    WHERE lo > 1 AND hi - lo + 1 = numbers AND events = numbers
      AND lo_time = first_time AND hi_time = last_time
), sessions AS (
    -- A number from 0 or 1 is the producer counting again (a new session after a
    -- restart or reinstall), in event-time order; so is a number no higher than the
    -- one before it in time (the restart's own events may be in another batch).
    -- Across batches compact.sql and match.sql tell sessions apart by 0 or 1 alone.
    SELECT time, host_id, event_id, event_name, event_sequence,
           sum(CASE WHEN event_sequence <= 1 OR event_sequence <= previous THEN 1 ELSE 0 END)
               OVER (PARTITION BY host_id ORDER BY time, event_sequence ROWS UNBOUNDED PRECEDING) AS session
    FROM (
        SELECT time, host_id, event_id, event_name, event_sequence,
               lag(event_sequence) OVER (PARTITION BY host_id ORDER BY time, event_sequence) AS previous
        FROM events
        WHERE event_sequence IS NOT NULL
          AND host_id NOT IN (SELECT host_id FROM unbroken)
    )
), numbered AS (
    SELECT *,
           -- Consecutive numbers share one run id (the gaps-and-islands trick). A
           -- number sent twice ranks once: counted twice, it would make up for a
           -- missing one after it.
           event_sequence - dense_rank() OVER (PARTITION BY host_id, session ORDER BY event_sequence) AS run
    FROM sessions
), runs AS (
    SELECT *,
           min(event_sequence) OVER (PARTITION BY host_id, session, run) AS run_start,
           max(event_sequence) OVER (PARTITION BY host_id, session, run) AS run_end,
           min(time) OVER (PARTITION BY host_id, session, run) AS run_time
    FROM numbered
)
SELECT time, host_id, event_id, event_name, event_sequence, run_start, run_end, run_time,
       -- What comes before a run is judged once the host's clock has passed the run's
       -- first event by the lateness: a missing number has until then to arrive.
       CASE WHEN event_sequence = run_start THEN time END AS due_at,
       time + ${window} AS keep_until
FROM runs
WHERE event_sequence = run_start OR event_sequence = run_end
UNION ALL
-- An unbroken host's two ends (one, when it sent one number), made from its one row.
SELECT CASE WHEN e.lowest THEN u.lo_time ELSE u.hi_time END AS time, u.host_id,
       CASE WHEN e.lowest THEN u.lo_id ELSE u.hi_id END AS event_id,
       CASE WHEN e.lowest THEN u.lo_name ELSE u.hi_name END AS event_name,
       CASE WHEN e.lowest THEN u.lo ELSE u.hi END AS event_sequence,
       u.lo AS run_start, u.hi AS run_end, u.first_time AS run_time,
       CASE WHEN e.lowest THEN u.lo_time END AS due_at,
       CASE WHEN e.lowest THEN u.lo_time ELSE u.hi_time END + ${window} AS keep_until
FROM unbroken u
CROSS JOIN (VALUES (true), (false)) AS e(lowest)
WHERE e.lowest OR u.hi <> u.lo
