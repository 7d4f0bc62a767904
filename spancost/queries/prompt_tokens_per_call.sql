-- title: Tokens per call
-- description: Input (of it cached) and output tokens of one call of the selected prompts, per time bucket.
SELECT
    $__timeInterval(Timestamp) AS time,
    avg(InputTokens) AS input_tokens,
    avg(CacheReadTokens) AS cached_input_tokens,
    avg(OutputTokens) AS output_tokens
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp)
  AND {{filters}}
GROUP BY time
ORDER BY time
