-- Every deny decision: the broker's answers, OPA's decision logs, denied clipboard writes.
SELECT time, host_id, user_name, gen_ai_agent_id, event_id, event_name,
       coalesce(policy_decision_id, event_id) AS decision,
       policy_reason,
       coalesce(broker_operation, policy_input_action, event_name) AS operation
FROM events
WHERE lower(policy_decision) = 'deny'
