-- title: Agent runs by {{label}}
-- description: The 50 agent runs with the highest {{label}}, each with its calls, tokens and cost; a trace id opens the run's trace.
-- variant: costliest_agent_runs label=cost order=cost_usd
-- variant: slowest_agent_runs label=duration order=duration_s
SELECT trace_id, agent, started, duration_s, calls, input_tokens, output_tokens, cost_usd
FROM ({{agent_runs}})
ORDER BY {{order}} DESC, trace_id
LIMIT 50
