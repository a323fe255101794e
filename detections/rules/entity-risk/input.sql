-- The risk each new alert added to each of its entities (cordon.risk events).
SELECT time, host_id, user_name, event_id, event_name,
       attributes['risk.entity_type'] AS entity_type,
       attributes['risk.entity'] AS entity,
       CAST(attributes['risk.score'] AS DOUBLE) AS score,
       attributes['risk.alert_id'] AS alert_id,
       attributes['risk.rule'] AS alert_rule,
       CASE attributes['risk.entity_type']
           WHEN 'user' THEN 1 WHEN 'host' THEN 2 WHEN 'agent' THEN 3 ELSE 4
       END AS priority
FROM events
WHERE event_name = 'cordon.risk'
  AND attributes['risk.entity'] IS NOT NULL
