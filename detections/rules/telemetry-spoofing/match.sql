SELECT host_id,
       time AS first_seen, time AS last_seen,
       make_array(event_id) AS evidence,
       producer, transport, records, claimed_kinds
FROM kept
