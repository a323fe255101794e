SELECT time, host_id, event_id, CAST(data_classification AS INT) AS level
FROM events
WHERE event_name = 'file.access'
