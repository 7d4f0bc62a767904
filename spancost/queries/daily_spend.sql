-- title: Daily spend
-- description: USD per day with the number of calls, and how many calls could not be priced.
SELECT
    toDate(Timestamp) AS day,
    sum(CostUSD) AS cost_usd,
    count() AS calls,
    countIf(CostStatus = 'unpriced') AS unpriced_calls
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp)
  AND {{filters}}
GROUP BY day
ORDER BY day
