WITH spawned AS (
    SELECT *,
           -- The bare tool name: no folder, no case, no .exe.
           regexp_replace(
               lower(regexp_replace(coalesce(process_executable_name, process_executable_path, ''), '^.*[/\\]', '')),
               '\.exe$', '') AS tool
    FROM process_start
    WHERE gen_ai_agent_id IS NOT NULL
)
SELECT time, host_id, user_name, gen_ai_agent_id, gen_ai_agent_name, event_id, event_name, tool,
       process_command_line AS command_line,
       process_parent_executable_name AS parent
FROM spawned s
WHERE (tool IN (${network_tools})
       OR (tool IN (${shells_with_web_cmdlets})
           AND regexp_like(lower(coalesce(process_command_line, '')), ${web_cmdlet_pattern})))
  AND NOT EXISTS (
      SELECT 1 FROM agent_network_tools a
      WHERE lower(a.tool) = s.tool
        AND (glob_match(s.gen_ai_agent_name, a.agent) OR glob_match(s.gen_ai_agent_id, a.agent)))
