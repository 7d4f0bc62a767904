-- title: Cost per call by prompt
-- description: For each prompt, what one call costs: mean, median, 95th percentile and maximum, over priced calls.
SELECT if(PromptName = '', '(untagged)', PromptName) AS prompt, calls, mean_usd, p50_usd, p95_usd, max_usd
FROM (
    -- grouped by the column itself, labelled after: the label is made once per group, not per call
    SELECT
        PromptName,
        count() AS calls,
        toFloat64(avg(CostUSD)) AS mean_usd,
        toFloat64(quantileExact(0.5)(CostUSD)) AS p50_usd,
        toFloat64(quantileExact(0.95)(CostUSD)) AS p95_usd,
        toFloat64(max(CostUSD)) AS max_usd
    FROM llm_calls FINAL
    WHERE $__timeFilter(Timestamp) AND CostStatus IN ('priced', 'provider')
      AND {{filters}}
    GROUP BY PromptName
)
ORDER BY mean_usd DESC
