-- Sensitive reads (by the broker for an agent, or seen on the endpoint) ...
SELECT time, host_id, user_name, gen_ai_agent_id, event_id, event_name,
       'read' AS step,
       coalesce(file_hash_sha256, file_path, event_id) AS item,
       coalesce(file_bytes, 0) AS bytes,
       CAST(NULL AS VARCHAR) AS destination,
       time + ${window} AS keep_until
FROM events e
WHERE ((event_name = 'agent.broker.request' AND broker_operation = 'file.read'
        AND coalesce(policy_decision, 'allow') = 'allow')
       OR (event_name = 'file.access' AND file_operation = 'read'))
  AND (data_classification IN (${sensitive_classes})
       OR EXISTS (SELECT 1 FROM sensitive_paths p WHERE path_match(e.file_path, p.pattern)))
UNION ALL
-- ... and outbound flows to destinations no approved pattern covers.
SELECT time, host_id, user_name, gen_ai_agent_id, event_id, event_name,
       'egress' AS step,
       CAST(NULL AS VARCHAR) AS item,
       coalesce(network_io_bytes_sent, 0) AS bytes,
       coalesce(destination_address, tls_client_server_name, destination_ip) AS destination,
       -- A flow pairs only with reads before it: once the watermark passes it, no
       -- read that can still arrive on time comes before it.
       time AS keep_until
FROM network_flow f
WHERE NOT EXISTS (
    SELECT 1 FROM approved_destinations a
    WHERE domain_match(coalesce(f.destination_address, f.tls_client_server_name, f.destination_ip), a.pattern))
