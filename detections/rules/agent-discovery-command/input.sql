-- Commands agents ran (reported by the agent, or seen starting with the agent as
-- their cause) that match the discovery pattern; a refused command did not run.
SELECT time, host_id, user_name, gen_ai_agent_id, session_id, event_id, event_name,
       process_command_line AS command_line
FROM events
WHERE gen_ai_agent_id IS NOT NULL
  AND event_name = 'process.start'
  AND coalesce(agent_tool_decision, 'accept') <> 'reject'
  AND regexp_like(lower(process_command_line), ${discovery_pattern})
