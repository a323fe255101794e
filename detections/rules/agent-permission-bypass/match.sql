-- One match per session (a session without an id is its agent's).
SELECT host_id, coalesce(session_id, gen_ai_agent_id) AS session_id,
       max(user_name) AS user_name, max(gen_ai_agent_id) AS gen_ai_agent_id,
       max(gen_ai_agent_name) AS agent,
       min(time) AS first_seen, max(time) AS last_seen,
       array_agg(event_id) AS evidence,
       max(mode) AS mode
FROM kept
GROUP BY host_id, coalesce(session_id, gen_ai_agent_id)
