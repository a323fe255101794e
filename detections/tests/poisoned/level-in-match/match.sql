-- The cast runs on every kept row of the partitions evaluated, old ones too: an event
-- it fails on, if it were kept, would fail each later evaluation of its host.
SELECT host_id, min(time) AS first_seen, max(time) AS last_seen, array_agg(event_id) AS evidence
FROM (SELECT host_id, time, event_id, is_new, CAST(data_classification AS INT) AS level FROM kept)
GROUP BY host_id
HAVING bool_or(is_new AND level >= 3)
