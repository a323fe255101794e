-- Writes by (or for) an agent to a file that configures agents, and commands that add
-- an MCP server. Refusals (policy denies) are not changes.
SELECT time, host_id, user_name, gen_ai_agent_id, session_id, event_id, event_name,
       coalesce(file_path, process_command_line) AS target,
       CASE WHEN file_path IS NOT NULL THEN 'file write' ELSE 'mcp server added' END AS change
FROM events e
WHERE gen_ai_agent_id IS NOT NULL
  AND event_name <> 'policy.decision'
  AND coalesce(lower(policy_decision), 'allow') <> 'deny'
  AND (
      (coalesce(file_operation, CASE WHEN broker_operation = 'file.write' THEN 'write' END) IN (${write_operations})
       AND EXISTS (SELECT 1 FROM agent_config_paths p WHERE path_match(e.file_path, p.pattern)))
      OR regexp_like(lower(coalesce(process_command_line, '')), ${mcp_add_pattern})
  )
