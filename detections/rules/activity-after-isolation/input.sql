-- Isolations and releases the target acknowledged (Cordon's own response events) ...
SELECT time, host_id, event_id, event_name,
       CASE attributes['response.action'] WHEN 'isolate_host' THEN 'isolated' ELSE 'released' END AS step,
       CAST(NULL AS VARCHAR) AS destination,
       time + ${window} AS keep_until
FROM events
WHERE event_name = 'cordon.response'
  AND attributes['response.outcome'] = 'delivered'
  AND attributes['response.action'] IN ('isolate_host', 'release_host')
UNION ALL
-- ... and outbound flows to destinations no approved pattern covers. A flow pairs
-- only with an isolation before it, so it need not stay once the watermark passes it.
SELECT time, host_id, event_id, event_name,
       'flow' AS step,
       coalesce(destination_address, tls_client_server_name, destination_ip) AS destination,
       time AS keep_until
FROM network_flow f
WHERE NOT EXISTS (
    SELECT 1 FROM approved_destinations a
    WHERE domain_match(coalesce(f.destination_address, f.tls_client_server_name, f.destination_ip), a.pattern))
