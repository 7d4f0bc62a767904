-- title: This month
-- description: USD spent since the 1st (UTC), the month-end it projects to at the pace so far, and both against the monthly budget.
SELECT
    cost_usd,
    projected_usd,
    $budget_usd AS budget_usd,
    if($budget_usd > 0, toFloat64(cost_usd) / $budget_usd, NULL) AS budget_used,
    if($budget_usd > 0, projected_usd / $budget_usd, NULL) AS projected_share_of_budget
FROM (
    SELECT
        sum(CostUSD) AS cost_usd,
        -- the pace of the month so far, over at least one hour so that a month's first minutes do
        -- not project a fortune
        toFloat64(sum(CostUSD)) * (toUnixTimestamp(toStartOfMonth($__toTime) + toIntervalMonth(1))
            - toUnixTimestamp(toStartOfMonth($__toTime)))
            / greatest(toUnixTimestamp($__toTime) - toUnixTimestamp(toStartOfMonth($__toTime)), 3600) AS projected_usd
    FROM llm_calls FINAL
    WHERE Timestamp >= toStartOfMonth($__toTime) AND Timestamp <= $__toTime
      AND {{filters}}
)
