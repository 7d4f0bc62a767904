-- title: Spend by model
-- description: USD per provider and model, with each one's share of the total and its calls and tokens.
SELECT
    Provider AS provider,
    Model AS model,
    sum(CostUSD) AS cost_usd,
    if(sum(sum(CostUSD)) OVER () = 0, 0, toFloat64(sum(CostUSD) / sum(sum(CostUSD)) OVER ())) AS share,
    count() AS calls,
    sum(InputTokens) AS input_tokens,
    sum(OutputTokens) AS output_tokens
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp)
  AND {{filters}}
GROUP BY provider, model
ORDER BY cost_usd DESC
