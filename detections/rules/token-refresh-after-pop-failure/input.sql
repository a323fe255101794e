SELECT time, host_id, user_name, gen_ai_agent_id, event_id, event_name,
       credential_token_id AS token_id,
       credential_failure_reason AS failure_reason,
       -- A refresh pairs only with failures before it, so it leaves at the watermark;
       -- a failure waits a window for refreshes.
       CASE WHEN event_name = 'credential.pop_failure' THEN time + ${window} ELSE time END AS keep_until
FROM events
WHERE event_name = 'credential.pop_failure'
   OR (event_name = 'credential.token' AND credential_action = 'refresh')
