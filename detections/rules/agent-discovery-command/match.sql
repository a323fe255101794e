-- One signal per command an agent ran.
SELECT host_id, gen_ai_agent_id, max(user_name) AS user_name, max(session_id) AS session_id,
       min(time) AS first_seen, max(time) AS last_seen, array_agg(event_id) AS evidence,
       max(command_line) AS command_line
FROM kept
GROUP BY host_id, gen_ai_agent_id, event_id
