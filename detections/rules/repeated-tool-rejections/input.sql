-- Every refused tool call of an agent session, whoever reported it.
SELECT time, host_id, user_name, gen_ai_agent_id, session_id, event_id, event_name,
       coalesce(gen_ai_tool_call_id, event_id) AS call,
       gen_ai_tool_name AS tool
FROM events
WHERE agent_tool_decision = 'reject' AND session_id IS NOT NULL
