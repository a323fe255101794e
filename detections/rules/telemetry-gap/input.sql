WITH numbered AS (
    SELECT time, host_id, event_id, event_name, event_sequence,
           -- Consecutive numbers share one run id (the gaps-and-islands trick).
           event_sequence - row_number() OVER (PARTITION BY host_id ORDER BY event_sequence, time) AS run
    FROM events
    WHERE event_sequence IS NOT NULL
), runs AS (
    SELECT host_id, run, min(event_sequence) AS run_start, max(event_sequence) AS run_end
    FROM numbered
    GROUP BY host_id, run
)
SELECT n.time, n.host_id, n.event_id, n.event_name, n.event_sequence, r.run_start, r.run_end,
       -- What comes before a run is judged once the host's clock has passed the run's
       -- first event by the lateness: a missing number has until then to arrive.
       CASE WHEN n.event_sequence = r.run_start THEN n.time END AS due_at,
       n.time + ${window} AS keep_until
FROM numbered n
JOIN runs r ON n.host_id = r.host_id AND n.run = r.run
WHERE n.event_sequence = r.run_start OR n.event_sequence = r.run_end
