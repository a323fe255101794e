SELECT time, host_id, event_id, producer, transport,
       CAST(attributes['spoofing.records'] AS BIGINT) AS records,
       attributes['spoofing.event_names'] AS claimed_kinds
FROM events
WHERE event_name = 'cordon.spoofing'
