-- title: Spend today
-- description: USD spent since midnight UTC, with the number of calls.
SELECT
    sum(CostUSD) AS cost_usd,
    count() AS calls
FROM llm_calls FINAL
WHERE Timestamp >= toStartOfDay($__toTime) AND Timestamp <= $__toTime
  AND {{filters}}
