-- For each web or upload call: the session's sensitive reads in the window before it.
WITH egress AS (
    SELECT session_id, host_id, user_name, gen_ai_agent_id, time, event_id, item AS tool,
           destination, is_new
    FROM kept WHERE step = 'egress'
), reads AS (
    SELECT session_id, time, event_id, item, is_new FROM kept WHERE step = 'read'
), changed_egress AS (
    -- Only a call that is new, or has a new (late) read before it, can match anew.
    SELECT * FROM egress e
    WHERE e.is_new OR EXISTS (
        SELECT 1 FROM reads r
        WHERE r.is_new AND r.session_id = e.session_id
          AND r.time <= e.time AND r.time >= e.time - ${window})
)
SELECT e.host_id, e.session_id, e.user_name, e.gen_ai_agent_id,
       min(r.time) AS first_seen, e.time AS last_seen,
       array_append(array_agg(r.event_id), e.event_id) AS evidence,
       e.tool, e.destination,
       count(DISTINCT r.item) AS sensitive_files,
       array_sort(array_distinct(array_agg(r.item))) AS files
FROM changed_egress e
JOIN reads r ON r.session_id = e.session_id AND r.time <= e.time AND r.time >= e.time - ${window}
GROUP BY e.host_id, e.session_id, e.user_name, e.gen_ai_agent_id, e.time, e.event_id, e.tool, e.destination
