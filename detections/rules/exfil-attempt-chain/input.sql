SELECT time, host_id, user_name, gen_ai_agent_id, event_id, event_name, 'read' AS step,
       time + ${window} AS keep_until
FROM events e
WHERE ((event_name = 'agent.broker.request' AND broker_operation = 'file.read'
        AND coalesce(policy_decision, 'allow') = 'allow')
       OR (event_name = 'file.access' AND file_operation = 'read'))
  AND (data_classification IN (${sensitive_classes})
       OR EXISTS (SELECT 1 FROM sensitive_paths p WHERE path_match(e.file_path, p.pattern)))
UNION ALL
SELECT time, host_id, user_name, gen_ai_agent_id, event_id, event_name, 'denied_upload' AS step,
       time + ${window} AS keep_until
FROM events
WHERE (event_name = 'agent.broker.request' AND broker_operation = 'net.upload' AND policy_decision = 'deny')
   OR (event_name = 'dlp.match' AND dlp_channel = 'upload' AND dlp_action = 'block')
UNION ALL
SELECT time, host_id, user_name, gen_ai_agent_id, event_id, event_name, 'clipboard' AS step,
       -- The clipboard write ends the chain: nothing that can still arrive on time follows it.
       time AS keep_until
FROM events
WHERE (event_name = 'clipboard.write' AND (dlp_fingerprint IS NOT NULL OR policy_decision = 'deny'))
   OR (event_name = 'agent.broker.request' AND broker_operation = 'clipboard.write' AND policy_decision = 'deny')
