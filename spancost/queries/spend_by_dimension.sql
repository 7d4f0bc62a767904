-- title: Spend by {{label}}
-- description: The top 20 {{label}}s by USD, each with its share of the total spend and of all calls.
-- variant: spend_by_workspace label=workspace column=WorkspaceId
-- variant: spend_by_feature label=feature column=Feature
-- variant: spend_by_user label=user column=UserId
SELECT
    if({{column}} = '', '(untagged)', {{column}}) AS {{label}},
    sum(CostUSD) AS cost_usd,
    if(sum(sum(CostUSD)) OVER () = 0, 0, toFloat64(sum(CostUSD) / sum(sum(CostUSD)) OVER ())) AS share_of_cost,
    count() AS calls,
    toFloat64(count() / sum(count()) OVER ()) AS share_of_calls
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp)
  AND {{filters}}
GROUP BY {{label}}
ORDER BY cost_usd DESC
LIMIT 20
