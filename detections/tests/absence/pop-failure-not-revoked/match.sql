SELECT f.host_id, f.user_name,
       f.time AS first_seen, f.time AS last_seen,
       make_array(f.event_id) AS evidence,
       f.token_id
FROM kept f
WHERE f.event_name = 'credential.pop_failure'
  AND f.is_due
  AND NOT EXISTS (
      SELECT 1 FROM kept r
      WHERE r.event_name = 'credential.token'
        AND r.host_id = f.host_id
        -- (IS NOT DISTINCT FROM fails to plan in a correlated subquery: DataFusion 55)
        AND coalesce(r.token_id, '') = coalesce(f.token_id, '')
        AND r.time >= f.time AND r.time <= f.time + ${window})
