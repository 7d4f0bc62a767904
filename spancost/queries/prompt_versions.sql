-- title: Prompt versions
-- description: Each version of the selected prompts: when it was first and last called, how often, and what one call cost and used.
SELECT
    if(PromptName = '', '(untagged)', PromptName) AS prompt,
    if(PromptVersion = '', '(no version)', PromptVersion) AS version,
    min(Timestamp) AS first_seen,
    max(Timestamp) AS last_seen,
    count() AS calls,
    toFloat64(avg(CostUSD)) AS cost_per_call_usd,
    avg(InputTokens) AS input_tokens_per_call,
    avg(OutputTokens) AS output_tokens_per_call
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp)
  AND {{filters}}
GROUP BY prompt, version
ORDER BY prompt, first_seen
