-- Each run of consecutive numbers within one producer session becomes two kept rows
-- (its first and last event), with the run's bounds and its first event time
-- (run_time: with the bounds, what tells the runs of two sessions apart).
--
-- Most hosts send an unbroken stretch of numbers between two evaluations, none from 0
-- or 1 (no restart) and none twice: one run, found with a hash aggregate (its bounds,
-- and that no number between them is missing) and its ends picked by a join. Only the other
-- hosts need the sorts that split their events into sessions and rank their numbers,
-- which cost about a third of the rule on a busy fleet (docs/performance.md).
WITH hosts AS (
    SELECT host_id, min(event_sequence) AS lo, max(event_sequence) AS hi,
           count(DISTINCT event_sequence) AS numbers, count(*) AS events,
           min(time) AS first_time, max(time) AS last_time
    FROM events
    WHERE event_sequence IS NOT NULL
    GROUP BY host_id
), unbroken_ends AS (
    -- Hosts whose numbers are one stretch, none sent twice and none from 0 or 1.
    SELECT host_id, lo AS event_sequence, lo, hi, first_time, last_time
    FROM hosts WHERE lo > 1 AND hi - lo + 1 = numbers AND events = numbers
    UNION ALL
    SELECT host_id, hi AS event_sequence, lo, hi, first_time, last_time
    FROM hosts WHERE lo > 1 AND hi - lo + 1 = numbers AND events = numbers AND hi <> lo
), ends AS (
    SELECT e.time, e.host_id, e.event_id, e.event_name, e.event_sequence, u.lo, u.hi, u.first_time
    FROM events e
    JOIN unbroken_ends u ON e.host_id = u.host_id AND e.event_sequence = u.event_sequence
    -- ... and whose first number is their earliest event and last number their latest.
    -- A restart whose 0 or 1 came in another batch shows as numbers falling in time
    -- (an old session's 4, then the new one's 2 and 3 look like one stretch 2-4).
    WHERE (e.event_sequence <> u.lo OR e.time = u.first_time)
      AND (e.event_sequence <> u.hi OR e.time = u.last_time)
), unbroken AS (
    SELECT host_id FROM ends GROUP BY host_id
    HAVING count(*) = CASE WHEN max(hi) = max(lo) THEN 1 ELSE 2 END
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
    SELECT host_id, session, run, min(event_sequence) AS run_start, max(event_sequence) AS run_end,
           min(time) AS run_time
    FROM numbered
    GROUP BY host_id, session, run
)
SELECT n.time, n.host_id, n.event_id, n.event_name, n.event_sequence, r.run_start, r.run_end,
       r.run_time,
       -- What comes before a run is judged once the host's clock has passed the run's
       -- first event by the lateness: a missing number has until then to arrive.
       CASE WHEN n.event_sequence = r.run_start THEN n.time END AS due_at,
       n.time + ${window} AS keep_until
FROM numbered n
JOIN runs r ON n.host_id = r.host_id AND n.session = r.session AND n.run = r.run
WHERE n.event_sequence = r.run_start OR n.event_sequence = r.run_end
UNION ALL
SELECT time, host_id, event_id, event_name, event_sequence, lo AS run_start, hi AS run_end,
       first_time AS run_time,
       CASE WHEN event_sequence = lo THEN time END AS due_at,
       time + ${window} AS keep_until
FROM ends
WHERE host_id IN (SELECT host_id FROM unbroken)
