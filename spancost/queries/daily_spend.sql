-- title: Daily spend
-- description: USD per day with the number of calls, and how many calls could not be priced.
SELECT
    Date AS day,
    sum(CostUSD) AS cost_usd,
    sum(Calls) AS calls,
    sumIf(Calls, CostStatus = 'unpriced') AS unpriced_calls
FROM llm_daily
WHERE $__dateFilter(Date)
GROUP BY day
ORDER BY day
