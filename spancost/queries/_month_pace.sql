-- This month's spend so far (UTC) and the share of the month gone, over at least one hour.
SELECT
    toFloat64(sum(CostUSD)) AS spent_usd,
    greatest(toUnixTimestamp($__toTime) - toUnixTimestamp(toStartOfMonth($__toTime)), 3600)
        / (toUnixTimestamp(toStartOfMonth($__toTime) + toIntervalMonth(1)) - toUnixTimestamp(toStartOfMonth($__toTime)))
        AS elapsed
FROM llm_calls FINAL
WHERE Timestamp >= toStartOfMonth($__toTime) AND Timestamp <= $__toTime
