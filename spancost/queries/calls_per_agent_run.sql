-- title: Calls per agent run
-- description: How many agent runs made how many model calls (cascading calls on the right), with what such a run cost on average.
SELECT
    toString(calls) AS calls_per_run,
    count() AS runs,
    toFloat64(avg(cost_usd)) AS mean_cost_usd
FROM ({{agent_runs}})
GROUP BY calls
ORDER BY calls
