WITH runs AS (
    SELECT host_id, run_start, run_end,
           min(time) AS run_time,
           max(CASE WHEN event_sequence = run_start THEN event_id END) AS first_id,
           max(CASE WHEN event_sequence = run_end THEN event_id END) AS last_id,
           max(CASE WHEN event_sequence = run_end THEN time END) AS last_time
    FROM kept
    GROUP BY host_id, run_start, run_end
), ordered AS (
    SELECT *,
           -- The highest number seen before this run, and the event that carried it.
           max(run_end) OVER (PARTITION BY host_id ORDER BY run_time, run_start
                              ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS reached,
           lag(last_id) OVER (PARTITION BY host_id ORDER BY run_time, run_start) AS before_id,
           lag(last_time) OVER (PARTITION BY host_id ORDER BY run_time, run_start) AS before_time
    FROM runs
)
SELECT host_id,
       before_time AS first_seen, run_time AS last_seen,
       make_array(before_id, first_id) AS evidence,
       reached + 1 AS missing_from, run_start - 1 AS missing_to,
       run_start - reached - 1 AS missing
FROM ordered
WHERE reached IS NOT NULL AND run_start - reached - 1 >= ${min_missing}
