-- This month's spend so far (UTC) and the share of the month gone, over at least one hour.
SELECT
    toFloat64(sum(CostUSD)) AS spent_usd,
    greatest(toUnixTimestamp(now()) - toUnixTimestamp(toStartOfMonth(now())), 3600)
        / (toUnixTimestamp(toStartOfMonth(now()) + toIntervalMonth(1)) - toUnixTimestamp(toStartOfMonth(now())))
        AS elapsed
FROM llm_calls FINAL
WHERE Timestamp >= toStartOfMonth(now()) AND Timestamp <= now()
