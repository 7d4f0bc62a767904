-- One row per agent run in the range: a trace with an agent or workflow span, named by its first
-- (outermost) agent, with the model calls in it that pass the filters: how many, their tokens and cost.
-- Runs and calls meet on TraceKey (the trace id as a 128-bit number, one to one with TraceId), which
-- is cheaper to test and group than the hex string; PREWHERE reads it before anything else (safe
-- with FINAL: the copies of a span share their trace).
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
        TraceKey,
        any(TraceId) AS TraceId,
        argMin(AgentName, Timestamp) AS agent,
        min(Timestamp) AS started,
        max(DurationNs) / 1e9 AS duration_s
    FROM agent_runs FINAL
    WHERE $__timeFilter(Timestamp)
    GROUP BY TraceKey
) AS r
INNER JOIN (
    SELECT
        TraceKey,
        count() AS calls,
        sum(InputTokens) AS input_tokens,
        sum(OutputTokens) AS output_tokens,
        sum(CostUSD) AS cost_usd
    FROM llm_calls FINAL
    PREWHERE TraceKey IN (SELECT TraceKey FROM agent_runs WHERE $__timeFilter(Timestamp))
    WHERE $__timeFilter(Timestamp)
      AND {{filters}}
    GROUP BY TraceKey
) AS c ON c.TraceKey = r.TraceKey
