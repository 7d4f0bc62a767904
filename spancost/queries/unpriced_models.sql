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
WHERE $__timeFilter(Timestamp) AND CostStatus = 'unpriced'
  AND {{filters}}
GROUP BY provider, model
ORDER BY calls DESC
