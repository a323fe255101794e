-- One match per tool call; none for a call that was refused.
SELECT host_id,
       coalesce(max(session_id), call) AS session_id,
       max(user_name) AS user_name,
       max(gen_ai_agent_id) AS gen_ai_agent_id,
       min(time) AS first_seen, max(time) AS last_seen,
       array_agg(event_id) AS evidence,
       call AS tool_call_id,
       max(agent_tool) AS agent_tool,
       max(network_tool) AS network_tool,
       max(command_line) AS command_line
FROM kept
GROUP BY host_id, call
HAVING NOT bool_or(refused)
