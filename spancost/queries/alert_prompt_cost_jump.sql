-- title: Prompt cost per call jump
-- description: For each prompt with at least the configured number of calls in each of the last two weeks, the change of its cost per call from the week before to the last 7 days, in percent; the rule fires above the configured jump.
SELECT prompt, (this_week - last_week) / last_week * 100 AS value
FROM (
    SELECT
        if(PromptName = '', '(untagged)', PromptName) AS prompt,
        toFloat64(avgIf(CostUSD, Timestamp > $__toTime - toIntervalDay(7))) AS this_week,
        toFloat64(avgIf(CostUSD, Timestamp <= $__toTime - toIntervalDay(7))) AS last_week,
        countIf(Timestamp > $__toTime - toIntervalDay(7)) AS calls_this_week,
        countIf(Timestamp <= $__toTime - toIntervalDay(7)) AS calls_last_week
    FROM llm_calls FINAL
    WHERE Timestamp > $__toTime - toIntervalDay(14) AND Timestamp <= $__toTime AND CostStatus IN ('priced', 'provider')
    GROUP BY prompt
)
WHERE calls_this_week >= $prompt_min_calls AND calls_last_week >= $prompt_min_calls AND last_week > 0
ORDER BY prompt
