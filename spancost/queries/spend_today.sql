-- title: Spend today
-- description: USD spent since midnight UTC, with the number of calls.
SELECT
    sum(CostUSD) AS cost_usd,
    count() AS calls
FROM llm_calls FINAL
WHERE Timestamp >= toStartOfDay(now()) AND Timestamp <= now()
  AND {{filters}}
