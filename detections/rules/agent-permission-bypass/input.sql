-- Events that carry a session's permission mode, when that mode skips the checks.
SELECT time, host_id, user_name, gen_ai_agent_id, gen_ai_agent_name, session_id, event_id, event_name,
       agent_permission_mode AS mode
FROM events
WHERE regexp_like(lower(agent_permission_mode), ${bypass_mode_pattern})
