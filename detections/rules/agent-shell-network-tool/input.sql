-- Shell commands agents report going ahead (an accepted permission decision; a result
-- or run, mapped to a process start), and the refusals of such calls. A call's bare
-- span says neither, so it is not kept: its run (a child span) or refusal will come.
WITH shell AS (
    SELECT time, host_id, user_name, gen_ai_agent_id, gen_ai_agent_name, session_id,
           event_id, event_name,
           coalesce(gen_ai_tool_call_id, event_id) AS call,
           gen_ai_tool_name AS agent_tool,
           process_command_line AS command_line,
           event_name = 'policy.decision' OR coalesce(agent_tool_decision = 'reject', false) AS refused,
           regexp_match(lower(process_command_line), ${network_tool_pattern})[1] AS network_tool
    FROM events
    WHERE agent_tool_category = 'shell' AND process_command_line IS NOT NULL
      AND (event_name IN ('process.start', 'policy.decision') OR agent_tool_decision IS NOT NULL)
)
SELECT * FROM shell s
WHERE network_tool IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM agent_network_tools a
      WHERE lower(a.tool) = s.network_tool
        AND (glob_match(s.gen_ai_agent_name, a.agent) OR glob_match(s.gen_ai_agent_id, a.agent)))
