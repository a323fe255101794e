-- One signal per agent and file.
SELECT host_id, gen_ai_agent_id, max(user_name) AS user_name, max(session_id) AS session_id,
       min(time) AS first_seen, max(time) AS last_seen, array_agg(event_id) AS evidence,
       file_path
FROM kept
GROUP BY host_id, gen_ai_agent_id, file_path
