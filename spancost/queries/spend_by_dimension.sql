-- title: Spend by {{label}}
-- description: The top 20 {{label}}s by USD, each with its share of the total spend and of all calls.
-- variant: spend_by_workspace label=workspace column=WorkspaceId
-- variant: spend_by_feature label=feature column=Feature
-- variant: spend_by_user label=user column=UserId
SELECT
    if({{label}} = '', '(untagged)', {{label}}) AS {{label}},
    cost_usd,
    if(sum(cost_usd) OVER () = 0, 0, toFloat64(cost_usd / sum(cost_usd) OVER ())) AS share_of_cost,
    calls,
    toFloat64(calls / sum(calls) OVER ()) AS share_of_calls
FROM (
    -- grouped by the column itself, labelled after: the label is made once per group, not per call
    SELECT {{column}} AS {{label}}, sum(CostUSD) AS cost_usd, count() AS calls
    FROM llm_calls FINAL
    WHERE $__timeFilter(Timestamp)
      AND {{filters}}
    GROUP BY {{column}}
)
ORDER BY cost_usd DESC
LIMIT 20
