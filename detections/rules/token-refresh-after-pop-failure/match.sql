SELECT r.host_id, r.user_name, r.gen_ai_agent_id,
       f.time AS first_seen, r.time AS last_seen,
       make_array(f.event_id, r.event_id) AS evidence,
       r.token_id, f.token_id AS failed_token_id, f.failure_reason
FROM kept f
JOIN kept r ON r.host_id = f.host_id
WHERE f.event_name = 'credential.pop_failure'
  AND r.event_name = 'credential.token'
  AND r.time >= f.time AND r.time <= f.time + ${window}
  AND (f.is_new OR r.is_new)
