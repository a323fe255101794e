SELECT time, host_id, event_id, data_classification
FROM events
WHERE event_name = 'file.access'
