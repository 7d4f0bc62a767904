-- title: Cost per call by prompt over time
-- description: What one call of each prompt costs, per time bucket: a prompt edit or a model change shows as a step.
SELECT
    $__timeInterval(Timestamp) AS time,
    if(PromptName = '', '(untagged)', PromptName) AS prompt,
    toFloat64(avg(CostUSD)) AS cost_per_call_usd
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp) AND CostStatus IN ('priced', 'provider')
  AND {{filters}}
GROUP BY time, prompt
ORDER BY time, prompt
