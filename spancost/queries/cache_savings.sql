-- title: Cache savings
-- description: What cached input tokens saved: their price as uncached input (at each call's own input rate) less what they cost.
SELECT
    sum(CacheReadTokens) AS cache_read_tokens,
    if(sum(InputTokens) = 0, 0, sum(CacheReadTokens) / sum(InputTokens)) AS cached_share_of_input,
    sum(CostCacheReadUSD) AS cache_read_cost_usd,
    -- a call's input rate is what its uncached input cost per token; calls with no uncached input
    -- tell no rate and count nothing
    sumIf(toFloat64(CostInputUSD) * CacheReadTokens / (InputTokens - CacheReadTokens - CacheWriteTokens)
              - toFloat64(CostCacheReadUSD),
          CacheReadTokens > 0 AND InputTokens > CacheReadTokens + CacheWriteTokens) AS saved_usd
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp) AND CostStatus = 'priced'
  AND {{filters}}
