SELECT host_id, user_name, gen_ai_agent_id,
       time AS first_seen, time AS last_seen,
       make_array(event_id) AS evidence,
       event_name AS tampered_kind, signature_key_id
FROM kept
