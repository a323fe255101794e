-- Only a run whose first event fell due now can be a gap, and a run's figures depend
-- only on its own host's runs: the hosts without one are left out before the window
-- functions, which cost per host (most evaluated hosts have nothing due).
WITH due AS (
    SELECT host_id, run_start, run_end, run_time, time, event_id, event_sequence, is_due
    FROM kept
    WHERE host_id IN (SELECT host_id FROM kept WHERE is_due AND event_sequence = run_start)
), runs AS (
    SELECT host_id, run_start, run_end, run_time,
           max(CASE WHEN event_sequence = run_start THEN event_id END) AS first_id,
           max(CASE WHEN event_sequence = run_end THEN event_id END) AS last_id,
           max(CASE WHEN event_sequence = run_end THEN time END) AS last_time,
           -- The run's first event fell due now: nothing missing before it can still arrive.
           bool_or(is_due AND event_sequence = run_start) AS start_due
    FROM due
    GROUP BY host_id, run_start, run_end, run_time
), sessions AS (
    -- A run from 0 or 1 is the producer counting again (a new session after a
    -- restart or reinstall), in event-time order: not a gap.
    SELECT *,
           sum(CASE WHEN run_start <= 1 THEN 1 ELSE 0 END)
               OVER (PARTITION BY host_id ORDER BY run_time, run_start ROWS UNBOUNDED PRECEDING) AS session
    FROM runs
), ordered AS (
    -- Within a session, runs in number order: late numbers fill the gaps they belong to.
    SELECT *,
           max(run_end) OVER (PARTITION BY host_id, session ORDER BY run_start, run_time
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reached
    FROM sessions
), gaps AS (
    SELECT * FROM ordered
    WHERE start_due AND reached IS NOT NULL AND run_start - reached - 1 >= ${min_missing}
)
-- The event before a gap: the end of the runs that reach it. A number sent twice can
-- end two runs until they merge, and the one before the gap in number order need not
-- be the one reaching furthest; their ends taken together are what the events one at
-- a time give.
SELECT g.host_id,
       max(b.last_time) AS first_seen, g.run_time AS last_seen,
       make_array(max(b.last_id), g.first_id) AS evidence,
       g.reached + 1 AS missing_from, g.run_start - 1 AS missing_to,
       g.run_start - g.reached - 1 AS missing
FROM gaps g
JOIN sessions b ON b.host_id = g.host_id AND b.session = g.session AND b.run_end = g.reached
GROUP BY g.host_id, g.session, g.run_start, g.run_end, g.run_time, g.first_id, g.reached
