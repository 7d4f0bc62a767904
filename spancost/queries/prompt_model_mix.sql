-- title: Model mix
-- description: Calls of the selected prompts by model, per time bucket.
SELECT
    $__timeInterval(Timestamp) AS time,
    Model AS model,
    count() AS calls
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp)
  AND {{filters}}
GROUP BY time, model
ORDER BY time, model
