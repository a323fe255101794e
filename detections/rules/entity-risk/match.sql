WITH windows AS (
    -- Each contribution closes a window over its entity's contributions before it,
    -- each faded by its age at that moment.
    SELECT last.entity_type, last.entity, last.priority, last.time AS last_seen,
           min(r.time) AS first_seen,
           sum(r.score * greatest(0.0, 1.0 - CAST(to_unixtime(last.time) - to_unixtime(r.time) AS DOUBLE) / ${decay_seconds})) AS risk,
           count(DISTINCT r.alert_id) AS alerts,
           array_agg(r.event_id) AS evidence,
           array_sort(array_distinct(array_agg(r.alert_id))) AS alert_ids,
           array_sort(array_distinct(array_agg(r.alert_rule))) AS rules,
           max(r.host_id) AS some_host, max(r.user_name) AS some_user
    FROM kept last
    JOIN kept r
      ON r.entity_type = last.entity_type AND r.entity = last.entity
     -- Within the partition (user_name): summed across users, a host's risk would
     -- depend on which partitions one evaluation happened to hold.
     AND (r.user_name IS NOT DISTINCT FROM last.user_name)
     AND r.time <= last.time AND r.time >= last.time - ${window}
    -- A lower entity's window closes when its contribution falls due (input.sql).
    WHERE last.due_at IS NULL OR last.is_due
    GROUP BY last.entity_type, last.entity, last.priority, last.event_id, last.time
), crossing AS (
    SELECT * FROM windows WHERE risk >= ${threshold} AND alerts >= ${min_alerts}
)
-- One incident per story: an entity whose alerts a higher entity's incident holds
-- is left to that one.
SELECT c.entity_type AS risk_entity_type, c.entity AS risk_entity,
       -- Where a response goes: the entity itself when it is a host or user.
       CASE c.entity_type WHEN 'host' THEN c.entity ELSE c.some_host END AS host_id,
       CASE c.entity_type WHEN 'user' THEN c.entity ELSE c.some_user END AS user_name,
       c.first_seen, c.last_seen, c.evidence,
       round(c.risk, 1) AS risk, c.alerts, c.alert_ids, c.rules
FROM crossing c
WHERE NOT EXISTS (
    SELECT 1 FROM crossing o
    WHERE o.priority < c.priority AND array_has_all(o.alert_ids, c.alert_ids))
