WITH calls AS (
    -- One row per refused call, however many reports of it.
    SELECT session_id, call, max(host_id) AS host_id, max(user_name) AS user_name,
           max(gen_ai_agent_id) AS gen_ai_agent_id, max(tool) AS tool,
           min(time) AS time, array_agg(event_id) AS ids
    FROM kept
    GROUP BY session_id, call
), windows AS (
    -- Each refusal closes a window: the same session's refusals before it.
    SELECT last.session_id, last.call, last.time AS last_seen, min(c.time) AS first_seen,
           count(*) AS rejections, flatten(array_agg(c.ids)) AS evidence,
           max(c.host_id) AS host_id, max(c.user_name) AS user_name,
           max(c.gen_ai_agent_id) AS gen_ai_agent_id,
           array_sort(array_distinct(array_agg(c.tool))) AS tools
    FROM calls last
    JOIN calls c
      ON c.session_id = last.session_id
     AND c.time <= last.time AND c.time >= last.time - ${window}
    GROUP BY last.session_id, last.call, last.time
)
SELECT host_id, session_id, user_name, gen_ai_agent_id,
       first_seen, last_seen, evidence, rejections, tools
FROM windows
WHERE rejections >= ${min_rejections}
