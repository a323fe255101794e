SELECT time, host_id, user_name, gen_ai_agent_id, event_id, event_name, signature_key_id
FROM events
WHERE signature_status = 'bad'
