-- Each signal closes a window: the distinct building blocks of its agent before it.
WITH windows AS (
    SELECT last.host_id, last.gen_ai_agent_id, last.time AS last_seen,
           min(s.time) AS first_seen,
           count(DISTINCT s.signal_rule) AS rules,
           array_sort(array_distinct(array_agg(s.signal_rule))) AS signal_rules,
           array_agg(s.event_id) AS evidence,
           array_sort(array_distinct(flatten(array_agg(s.signal_evidence)))) AS signal_events,
           max(s.user_name) AS user_name
    FROM kept last
    JOIN kept s
      ON s.host_id = last.host_id AND s.gen_ai_agent_id = last.gen_ai_agent_id
     AND s.time <= last.time AND s.time >= last.time - ${window}
    GROUP BY last.host_id, last.gen_ai_agent_id, last.event_id, last.time
)
SELECT host_id, gen_ai_agent_id, user_name, first_seen, last_seen, evidence, rules, signal_rules,
       signal_events
FROM windows
WHERE rules >= ${min_rules}
