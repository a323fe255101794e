-- Reads by an agent (its own file tool, or a read the endpoint saw it cause) of a
-- sensitive file; a refused read is not a read.
SELECT time, host_id, user_name, gen_ai_agent_id, session_id, event_id, event_name,
       file_path
FROM events e
WHERE gen_ai_agent_id IS NOT NULL
  AND event_name <> 'policy.decision'
  AND coalesce(agent_tool_decision, 'accept') <> 'reject'
  AND (file_operation = 'read' OR agent_tool_category = 'file_read')
  AND (data_classification IN (${sensitive_classes})
       OR EXISTS (SELECT 1 FROM sensitive_paths p WHERE path_match(e.file_path, p.pattern)))
