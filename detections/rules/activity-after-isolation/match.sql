-- For each delivered isolation: the unapproved flows from the grace period after it to
-- the window's end, unless a delivered release came between.
WITH isolations AS (SELECT * FROM kept WHERE step = 'isolated'),
releases AS (SELECT * FROM kept WHERE step = 'released'),
flows AS (SELECT * FROM kept WHERE step = 'flow'),
after_isolation AS (
    SELECT i.host_id, i.event_id AS isolation_id, i.time AS isolated_at,
           f.event_id AS flow_id, f.time AS flow_time, f.destination,
           i.is_new OR f.is_new AS is_new
    FROM isolations i
    JOIN flows f ON f.host_id = i.host_id
     AND f.time >= i.time + ${grace} AND f.time <= i.time + ${window}
    WHERE NOT EXISTS (
        SELECT 1 FROM releases r
        WHERE r.host_id = i.host_id AND r.time > i.time AND r.time <= f.time)
)
SELECT host_id,
       isolated_at AS first_seen,
       max(flow_time) AS last_seen,
       array_concat(make_array(isolation_id), array_agg(flow_id)) AS evidence,
       count(*) AS flows_after_isolation,
       array_agg(DISTINCT destination) AS destinations
FROM after_isolation
GROUP BY host_id, isolation_id, isolated_at
-- Only isolations that a new event changed.
HAVING count(*) >= ${min_flows} AND bool_or(is_new)
