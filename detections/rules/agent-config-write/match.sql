SELECT host_id, gen_ai_agent_id, user_name, session_id,
       time AS first_seen, time AS last_seen,
       make_array(event_id) AS evidence,
       change, target
FROM kept
