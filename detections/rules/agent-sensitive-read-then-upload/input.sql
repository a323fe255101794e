-- A session's sensitive reads ...
SELECT time, host_id, user_name, gen_ai_agent_id, session_id, event_id, event_name,
       'read' AS step,
       file_path AS item,
       CAST(NULL AS VARCHAR) AS destination,
       time + ${window} AS keep_until
FROM events e
WHERE session_id IS NOT NULL
  AND event_name <> 'policy.decision'
  AND coalesce(agent_tool_decision, 'accept') <> 'reject'
  AND (file_operation = 'read' OR agent_tool_category = 'file_read')
  AND (data_classification IN (${sensitive_classes})
       OR EXISTS (SELECT 1 FROM sensitive_paths p WHERE path_match(e.file_path, p.pattern)))
UNION ALL
-- ... and its web and upload tool calls to destinations no approved pattern covers.
SELECT time, host_id, user_name, gen_ai_agent_id, session_id, event_id, event_name,
       'egress' AS step,
       coalesce(gen_ai_tool_name, event_name) AS item,
       coalesce(destination_address, url_full, mcp_server_name) AS destination,
       -- Pairs only with reads before it.
       time AS keep_until
FROM events e
WHERE session_id IS NOT NULL
  AND event_name <> 'policy.decision'
  AND coalesce(agent_tool_decision, 'accept') <> 'reject'
  AND (agent_tool_category = 'web'
       OR (agent_tool_category IN ('mcp', 'other')
           AND regexp_like(lower(coalesce(gen_ai_tool_name, '')), ${upload_tool_pattern})))
  AND NOT EXISTS (
      SELECT 1 FROM approved_destinations a
      WHERE domain_match(e.destination_address, a.pattern))
