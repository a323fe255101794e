SELECT time, host_id, user_name, event_id, event_name,
       credential_token_id AS token_id,
       -- The failure is judged when its window has closed; the revocation waits as
       -- long, so every failure it may follow still finds it.
       CASE WHEN event_name = 'credential.pop_failure' THEN time + ${window} END AS due_at,
       time + ${window} AS keep_until
FROM events
WHERE event_name = 'credential.pop_failure'
   OR (event_name = 'credential.token' AND credential_action = 'revoke')
