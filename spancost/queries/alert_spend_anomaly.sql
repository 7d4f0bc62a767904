-- title: Daily spend anomaly
-- description: Today's spend so far in standard deviations above the mean daily spend of the configured number of days before (days without spend count as $0); the rule fires above the configured sigmas. Quiet until 7 earlier days have spend.
SELECT
    multiIf(
        days_with_spend < 7, 0,
        std_usd > 0, (today_usd - mean_usd) / std_usd,
        today_usd > mean_usd, 1000000,
        0) AS value
FROM (
    SELECT
        sumIf(spend, day = toDate($__toTime)) AS today_usd,
        sumIf(spend, day < toDate($__toTime)) / $anomaly_days AS mean_usd,
        sqrt(greatest(sumIf(spend * spend, day < toDate($__toTime)) / $anomaly_days - mean_usd * mean_usd, 0)) AS std_usd,
        countIf(day < toDate($__toTime)) AS days_with_spend
    FROM (
        SELECT toDate(Timestamp) AS day, toFloat64(sum(CostUSD)) AS spend
        FROM llm_calls FINAL
        WHERE Timestamp >= toStartOfDay($__toTime) - toIntervalDay($anomaly_days) AND Timestamp <= $__toTime
        GROUP BY day
    )
)
