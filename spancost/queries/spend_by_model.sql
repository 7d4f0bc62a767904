-- title: Spend by model
-- description: USD per provider and model, with each one's share of the total and its calls and tokens.
SELECT
    splitByChar('\x1f', ProviderModel)[1] AS provider,
    splitByChar('\x1f', ProviderModel)[2] AS model,
    {{spend_columns}}
FROM (
    -- grouped by ProviderModel, provider and model in one LowCardinality value (twice as fast as by
    -- the two), and split after: once per group
    SELECT
        ProviderModel,
        {{call_totals}}
    FROM llm_calls FINAL
    WHERE $__timeFilter(Timestamp)
      AND {{filters}}
    GROUP BY ProviderModel
)
ORDER BY cost_usd DESC
