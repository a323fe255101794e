WITH spawned AS (
    SELECT *,
           -- The program, read every way it can show: its executable's name and path,
           -- the command line's first word (a renamed or copied binary still shows
           -- there), and the applet after a multi-call binary (`busybox wget`).
           program_name(process_executable_name) AS by_name,
           program_name(process_executable_path) AS by_path,
           program_name(command_word(process_command_line, 1)) AS by_command,
           program_name(command_word(process_command_line, 2)) AS second_word
    FROM process_start
    -- What the endpoint saw. A start an agent reported of its own tool call
    -- (agent.tool.category set) is agent-shell-network-tool's.
    WHERE gen_ai_agent_id IS NOT NULL AND agent_tool_category IS NULL
), named AS (
    SELECT *,
           CASE
               WHEN by_command IN (${multi_call_binaries}) AND second_word IN (${network_tools}) THEN second_word
               WHEN by_name IN (${network_tools}) THEN by_name
               WHEN by_path IN (${network_tools}) THEN by_path
               WHEN by_command IN (${network_tools}) THEN by_command
               WHEN coalesce(by_name, by_path, by_command) IN (${shells_with_web_cmdlets})
                    AND regexp_like(lower(coalesce(process_command_line, '')), ${web_cmdlet_pattern})
                   THEN coalesce(by_name, by_path, by_command)
           END AS tool
    FROM spawned
)
SELECT time, host_id, user_name, gen_ai_agent_id, gen_ai_agent_name, event_id, event_name, tool,
       process_command_line AS command_line,
       process_parent_executable_name AS parent
FROM named s
WHERE tool IS NOT NULL
  AND NOT EXISTS (
      SELECT 1 FROM agent_network_tools a
      WHERE lower(a.tool) = s.tool
        AND (glob_match(s.gen_ai_agent_name, a.agent) OR glob_match(s.gen_ai_agent_id, a.agent)))
