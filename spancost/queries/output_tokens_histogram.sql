-- title: Output tokens per call
-- description: How many calls produced how many output tokens, in power-of-two buckets (outliers at the bottom).
SELECT
    if(OutputTokens = 0, '0', concat(toString(toUInt64(pow(2, floor(log2(OutputTokens))))), '–',
        toString(toUInt64(pow(2, floor(log2(OutputTokens)) + 1) - 1)))) AS bucket,
    toUInt64(if(OutputTokens = 0, 0, pow(2, floor(log2(OutputTokens))))) AS bucket_from,
    toUInt64(if(OutputTokens = 0, 0, pow(2, floor(log2(OutputTokens)) + 1) - 1)) AS bucket_to,
    count() AS calls,
    toFloat64(sum(CostUSD)) AS cost_usd
FROM llm_calls FINAL
WHERE $__timeFilter(Timestamp) AND Operation != 'embeddings'
  AND {{filters}}
GROUP BY bucket, bucket_from, bucket_to
ORDER BY bucket_from
