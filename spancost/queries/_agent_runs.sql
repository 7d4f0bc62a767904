-- One row per agent run in the range: a trace with an agent or workflow span, named by its first
-- (outermost) agent, with the model calls in it that pass the filters: how many, their tokens and cost.
SELECT
    r.TraceId AS trace_id,
    r.agent AS agent,
    r.started AS started,
    r.duration_s AS duration_s,
    c.calls AS calls,
    c.input_tokens AS input_tokens,
    c.output_tokens AS output_tokens,
    c.cost_usd AS cost_usd
FROM (
    SELECT
        TraceId,
        argMin(AgentName, Timestamp) AS agent,
        min(Timestamp) AS started,
        max(DurationNs) / 1e9 AS duration_s
    FROM agent_runs FINAL
    WHERE $__timeFilter(Timestamp)
    GROUP BY TraceId
) AS r
INNER JOIN (
    SELECT
        TraceId,
        count() AS calls,
        sum(InputTokens) AS input_tokens,
        sum(OutputTokens) AS output_tokens,
        sum(CostUSD) AS cost_usd
    FROM llm_calls FINAL
    WHERE $__timeFilter(Timestamp)
      AND TraceId IN (SELECT TraceId FROM agent_runs WHERE $__timeFilter(Timestamp))
      AND {{filters}}
    GROUP BY TraceId
) AS c ON c.TraceId = r.TraceId
