-- The risk each new alert added to each of its entities (cordon.risk events).
SELECT time, host_id, user_name, event_id, event_name,
       attributes['risk.entity_type'] AS entity_type,
       attributes['risk.entity'] AS entity,
       CAST(attributes['risk.score'] AS DOUBLE) AS score,
       attributes['risk.alert_id'] AS alert_id,
       attributes['risk.rule'] AS alert_rule,
       CASE attributes['risk.entity_type']
           WHEN 'user' THEN 1 WHEN 'host' THEN 2 WHEN 'agent' THEN 3 ELSE 4
       END AS priority,
       -- An entity below its alert's highest (the user's, else the host's) is judged
       -- once the lateness has passed: by then the higher entity's contribution from
       -- the same alert has arrived, and one incident per story does not depend on
       -- which of an alert's risk events one evaluation happened to hold.
       CASE WHEN (CASE attributes['risk.entity_type']
                      WHEN 'user' THEN 1 WHEN 'host' THEN 2 WHEN 'agent' THEN 3 ELSE 4 END)
                 > (CASE WHEN user_name IS NULL THEN 2 ELSE 1 END)
            THEN time END AS due_at
FROM events
WHERE event_name = 'cordon.risk'
  AND attributes['risk.entity'] IS NOT NULL
