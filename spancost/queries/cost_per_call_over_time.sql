-- title: Cost per call by prompt over time
-- description: What one call of each prompt costs, per time bucket: a prompt edit or a model change shows as a step.
SELECT time, if(PromptName = '', '(untagged)', PromptName) AS prompt, cost_per_call_usd
FROM (
    -- grouped by the column itself, labelled after: the label is made once per group, not per call
    SELECT
        $__timeInterval(Timestamp) AS time,
        PromptName,
        toFloat64(avg(CostUSD)) AS cost_per_call_usd
    FROM llm_calls FINAL
    WHERE $__timeFilter(Timestamp) AND CostStatus IN ('priced', 'provider')
      AND {{filters}}
    GROUP BY time, PromptName
)
ORDER BY time, prompt
