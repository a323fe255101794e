WITH decisions AS (
    -- One row per decision, whichever producers logged it.
    SELECT decision, user_name,
           max(gen_ai_agent_id) AS agent_id, max(host_id) AS host_id,
           min(time) AS time, array_agg(event_id) AS ids
    FROM kept
    GROUP BY decision, user_name
), windows AS (
    -- Each decision closes a window: the decisions of the same user and agent before it.
    SELECT last.user_name, last.agent_id, last.decision, last.time AS last_seen,
           min(d.time) AS first_seen, count(*) AS denies,
           flatten(array_agg(d.ids)) AS evidence, max(d.host_id) AS host_id
    FROM decisions last
    JOIN decisions d
      ON (d.user_name IS NOT DISTINCT FROM last.user_name)
     AND (d.agent_id IS NOT DISTINCT FROM last.agent_id)
     AND d.time <= last.time AND d.time >= last.time - ${window}
    GROUP BY last.user_name, last.agent_id, last.decision, last.time
)
SELECT user_name, agent_id AS gen_ai_agent_id, host_id, first_seen, last_seen, evidence, denies
FROM windows
WHERE denies >= ${min_denies}
