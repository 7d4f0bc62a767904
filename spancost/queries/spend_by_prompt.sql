-- title: Spend by prompt
-- description: USD per prompt over the range, its share of the total, calls and tokens.
SELECT
    if(PromptName = '', '(untagged)', PromptName) AS prompt,
    sum(CostUSD) AS cost_usd,
    if(sum(sum(CostUSD)) OVER () = 0, 0, toFloat64(sum(CostUSD) / sum(sum(CostUSD)) OVER ())) AS share,
    count() AS calls,
    sum(InputTokens) AS input_tokens,
    sum(OutputTokens) AS output_tokens
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp)
  AND {{filters}}
GROUP BY prompt
ORDER BY cost_usd DESC
