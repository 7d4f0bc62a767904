-- title: Unpriced calls
-- description: Calls whose model the price table does not know, by model: a gap in the table, shown rather than counted as $0.
SELECT
    Provider AS provider,
    Model AS model,
    count() AS calls,
    sum(InputTokens) AS input_tokens,
    sum(OutputTokens) AS output_tokens,
    min(Timestamp) AS first_seen,
    max(Timestamp) AS last_seen
FROM llm_calls FINAL
-- The status is read first and the few unpriced rows merged, not every row: with FINAL, ClickHouse
-- does not move a WHERE there itself. Copies of a span carry the same status, so a span stored twice
-- still counts once; only between a re-price's insert and its OPTIMIZE could an old unpriced version
-- show here.
PREWHERE CostStatus = 'unpriced'
WHERE $__timeFilter(Timestamp)
  AND {{filters}}
GROUP BY provider, model
ORDER BY calls DESC
