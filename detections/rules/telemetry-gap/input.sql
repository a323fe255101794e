-- Each run of consecutive numbers within one producer session becomes two kept rows
-- (its first and last event), with the run's bounds and its first event time
-- (run_time: with the bounds, what tells the runs of two sessions apart).
--
-- Most hosts send an unbroken stretch of numbers between two evaluations, and none
-- from 0 or 1 (no restart): one run, found with a hash aggregate (its bounds, and that
-- no number between them is missing) and its ends picked by a join. Only the other
-- hosts need the sorts that split their events into sessions and rank their numbers,
-- which cost about a third of the rule on a busy fleet (docs/performance.md).
WITH hosts AS (
    SELECT host_id, min(event_sequence) AS lo, max(event_sequence) AS hi,
           count(DISTINCT event_sequence) AS numbers, min(time) AS first_time
    FROM events
    WHERE event_sequence IS NOT NULL
    GROUP BY host_id
), unbroken AS (
    SELECT host_id, lo, hi, first_time FROM hosts WHERE lo > 1 AND hi - lo + 1 = numbers
), unbroken_ends AS (
    SELECT host_id, lo AS event_sequence, lo, hi, first_time FROM unbroken
    UNION ALL
    SELECT host_id, hi AS event_sequence, lo, hi, first_time FROM unbroken WHERE hi <> lo
), sessions AS (
    -- A number from 0 or 1 is the producer counting again (a new session after a
    -- restart or reinstall), in event-time order.
    SELECT time, host_id, event_id, event_name, event_sequence,
           sum(CASE WHEN event_sequence <= 1 THEN 1 ELSE 0 END)
               OVER (PARTITION BY host_id ORDER BY time, event_sequence ROWS UNBOUNDED PRECEDING) AS session
    FROM events
    WHERE event_sequence IS NOT NULL
      AND host_id IN (SELECT host_id FROM hosts WHERE lo <= 1 OR hi - lo + 1 <> numbers)
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
SELECT e.time, e.host_id, e.event_id, e.event_name, e.event_sequence, u.lo AS run_start, u.hi AS run_end,
       u.first_time AS run_time,
       CASE WHEN e.event_sequence = u.lo THEN e.time END AS due_at,
       e.time + ${window} AS keep_until
FROM events e
JOIN unbroken_ends u ON e.host_id = u.host_id AND e.event_sequence = u.event_sequence
