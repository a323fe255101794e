WITH reads AS (SELECT * FROM kept WHERE step = 'read'),
uploads AS (SELECT * FROM kept WHERE step = 'denied_upload'),
clips AS (SELECT * FROM kept WHERE step = 'clipboard'),
chains AS (
    -- Read, then denied upload, then clipboard: all within the window of the clipboard write.
    SELECT c.host_id, r.user_name,
           c.event_id AS clip_id, c.time AS clip_time,
           u.event_id AS upload_id, r.event_id AS read_id, r.time AS read_time,
           c.is_new OR u.is_new OR r.is_new AS is_new
    FROM clips c
    JOIN uploads u ON u.host_id = c.host_id AND u.time <= c.time AND u.time >= c.time - ${window}
    JOIN reads r ON r.host_id = c.host_id AND r.time <= u.time AND r.time >= c.time - ${window}
    WHERE (u.user_name IS NULL OR u.user_name = r.user_name)
      AND (c.user_name IS NULL OR c.user_name = r.user_name)
)
SELECT host_id, user_name,
       min(read_time) AS first_seen, clip_time AS last_seen,
       array_concat(array_agg(DISTINCT read_id), array_agg(DISTINCT upload_id), make_array(clip_id)) AS evidence,
       count(DISTINCT read_id) AS sensitive_reads,
       count(DISTINCT upload_id) AS denied_uploads
FROM chains
GROUP BY host_id, user_name, clip_id, clip_time
-- Only chains that a new event completed or changed.
HAVING count(DISTINCT read_id) >= ${min_sensitive_reads} AND bool_or(is_new)
