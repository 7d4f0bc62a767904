-- title: Run cost by agent
-- description: What each agent's runs cost, per time bucket.
SELECT
    $__timeInterval(started) AS time,
    agent,
    toFloat64(sum(cost_usd)) AS cost_usd
FROM ({{agent_runs}})
GROUP BY time, agent
ORDER BY time, agent
