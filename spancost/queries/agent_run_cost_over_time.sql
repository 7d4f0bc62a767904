-- title: Cost per agent run over time
-- description: Mean and 95th-percentile cost of a run, and the number of runs, per time bucket.
SELECT
    $__timeInterval(started) AS time,
    toFloat64(avg(cost_usd)) AS mean_cost_usd,
    toFloat64(quantile(0.95)(cost_usd)) AS p95_cost_usd,
    count() AS runs
FROM ({{agent_runs}})
GROUP BY time
ORDER BY time
