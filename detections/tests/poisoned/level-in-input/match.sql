SELECT host_id, min(time) AS first_seen, max(time) AS last_seen, array_agg(event_id) AS evidence
FROM kept
WHERE is_new AND level >= 3
GROUP BY host_id
