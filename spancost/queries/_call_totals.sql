-- What the calls of one group add up to: spend, count and tokens (the per-group sums of the spend tables).
sum(CostUSD) AS cost_usd,
        count() AS calls,
        sum(InputTokens) AS input_tokens,
        sum(OutputTokens) AS output_tokens
