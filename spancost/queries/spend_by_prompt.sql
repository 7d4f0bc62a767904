-- title: Spend by prompt
-- description: USD per prompt over the range, its share of the total, calls and tokens.
SELECT
    if(PromptName = '', '(untagged)', PromptName) AS prompt,
    {{spend_columns}}
FROM (
    -- grouped by the column itself, labelled after: the label is made once per group, not per call
    SELECT
        PromptName,
        {{call_totals}}
    FROM llm_calls FINAL
    WHERE $__timeFilter(Timestamp)
      AND {{filters}}
    GROUP BY PromptName
)
ORDER BY cost_usd DESC
