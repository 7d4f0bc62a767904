-- title: Cost per call by prompt version
-- description: What one call of the selected prompts costs per time bucket, one line per prompt version: an edit shows as a step.
SELECT
    $__timeInterval(Timestamp) AS time,
    concat(PromptName, ' ', if(PromptVersion = '', '(no version)', PromptVersion)) AS version,
    toFloat64(avg(CostUSD)) AS cost_per_call_usd
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp) AND CostStatus IN ('priced', 'provider')
  AND {{filters}}
GROUP BY time, version
ORDER BY time, version
