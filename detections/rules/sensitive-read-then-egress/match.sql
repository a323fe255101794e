-- For each egress: each reader's sensitive files in the window before it (a file
-- counted once, at its largest read). Fires when one reader reaches min_files files
-- or min_bytes bytes.
WITH egress AS (
    SELECT host_id, time, event_id, destination, bytes, is_new FROM kept WHERE step = 'egress'
), reads AS (
    SELECT host_id, user_name, time, event_id, item, bytes, is_new FROM kept WHERE step = 'read'
), changed_egress AS (
    -- Only egress that is new, or has a new (late) read before it, can match anew.
    SELECT * FROM egress e
    WHERE e.is_new OR EXISTS (
        SELECT 1 FROM reads r
        WHERE r.is_new AND r.host_id = e.host_id AND r.time <= e.time AND r.time >= e.time - ${window})
), files_before_egress AS (
    SELECT e.event_id AS egress_id, e.time AS egress_time, e.destination, e.bytes AS bytes_sent,
           r.host_id, r.user_name, r.item,
           max(r.bytes) AS bytes, min(r.time) AS first_read, array_agg(r.event_id) AS read_ids
    FROM changed_egress e
    JOIN reads r ON r.host_id = e.host_id AND r.time <= e.time AND r.time >= e.time - ${window}
    GROUP BY e.event_id, e.time, e.destination, e.bytes, r.host_id, r.user_name, r.item
)
SELECT host_id, user_name,
       min(first_read) AS first_seen,
       egress_time AS last_seen,
       array_append(flatten(array_agg(read_ids)), egress_id) AS evidence,
       destination,
       bytes_sent,
       count(*) AS sensitive_files,
       sum(bytes) AS sensitive_bytes
FROM files_before_egress
GROUP BY host_id, user_name, egress_id, egress_time, destination, bytes_sent
HAVING count(*) >= ${min_files} OR sum(bytes) >= ${min_bytes}
