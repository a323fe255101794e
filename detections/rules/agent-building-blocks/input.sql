-- Signals of building-block rules that name an agent.
SELECT time, host_id, user_name, gen_ai_agent_id, event_id, event_name, signal_rule, signal_evidence
FROM signals
WHERE gen_ai_agent_id IS NOT NULL
