-- title: Output tokens per call
-- description: How many calls produced how many output tokens, in power-of-two buckets (outliers at the bottom).
SELECT
    if(power = 0, '0', concat(toString(bucket_from), '–', toString(bucket_to))) AS bucket,
    bucket_from,
    bucket_to,
    calls,
    cost_usd
FROM (
    SELECT
        -- 0 for no output, else 1 + the power of two at or below it: one small integer per call, so
        -- that the labels are made once per bucket, not once per call
        toUInt8(if(OutputTokens = 0, 0, floor(log2(OutputTokens)) + 1)) AS power,
        toUInt64(if(power = 0, 0, exp2(power - 1))) AS bucket_from,
        toUInt64(if(power = 0, 0, exp2(power) - 1)) AS bucket_to,
        count() AS calls,
        toFloat64(sum(CostUSD)) AS cost_usd
    FROM llm_calls FINAL
    WHERE $__timeFilter(Timestamp) AND Operation != 'embeddings'
      AND {{filters}}
    GROUP BY power
)
ORDER BY bucket_from
