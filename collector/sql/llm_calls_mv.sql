-- Model-call spans of otel_traces → llm_calls. A span is a model call when its operation is one
-- (chat, text_completion, embeddings, generate_content) or, from emitters that name no operation,
-- when it carries a model and token counts: the same rule as spancost.costing.is_inference. A span
-- marked as the duplicate of another for the same call (two instrumentations saw it) is left out.
CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_calls_mv {on_cluster}
TO {database}.{llm_calls}
AS SELECT
    Timestamp,
    TraceId,
    SpanId,
    ParentSpanId,
    ServiceName,
    ResourceAttributes['service.version'] AS ServiceVersion,
    if(SpanAttributes['gen_ai.provider.name'] != '', SpanAttributes['gen_ai.provider.name'],
       SpanAttributes['gen_ai.system']) AS Provider,
    if(SpanAttributes['gen_ai.response.model'] != '', SpanAttributes['gen_ai.response.model'],
       SpanAttributes['gen_ai.request.model']) AS Model,
    SpanAttributes['gen_ai.request.model'] AS RequestModel,
    SpanAttributes['gen_ai.operation.name'] AS Operation,
    SpanAttributes['spancost.prompt.name'] AS PromptName,
    SpanAttributes['spancost.prompt.version'] AS PromptVersion,
    SpanAttributes['user.id'] AS UserId,
    SpanAttributes['spancost.workspace.id'] AS WorkspaceId,
    SpanAttributes['spancost.feature'] AS Feature,
    SpanAttributes['spancost.experiment.variant'] AS ExperimentVariant,
    SpanAttributes['spancost.entry_point'] AS EntryPoint,
    SpanAttributes['spancost.run.id'] AS RunId,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.input_tokens']) AS InputTokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.output_tokens']) AS OutputTokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.cache_read.input_tokens']) AS CacheReadTokens,
    toUInt64OrZero(if(SpanAttributes['gen_ai.usage.cache_write.input_tokens'] != '',
                      SpanAttributes['gen_ai.usage.cache_write.input_tokens'],
                      SpanAttributes['gen_ai.usage.cache_creation.input_tokens'])) AS CacheWriteTokens,
    toUInt64OrZero(SpanAttributes['gen_ai.usage.reasoning.output_tokens']) AS ReasoningTokens,
    toDecimal64OrZero(SpanAttributes['gen_ai.usage.cost.amount'], 9) AS CostUSD,
    toDecimal64OrZero(SpanAttributes['spancost.cost.input'], 9) AS CostInputUSD,
    toDecimal64OrZero(SpanAttributes['spancost.cost.output'], 9) AS CostOutputUSD,
    toDecimal64OrZero(SpanAttributes['spancost.cost.cache_read'], 9) AS CostCacheReadUSD,
    toDecimal64OrZero(SpanAttributes['spancost.cost.cache_write'], 9) AS CostCacheWriteUSD,
    SpanAttributes['spancost.cost.status'] AS CostStatus,
    SpanAttributes['gen_ai.usage.cost.source'] AS CostSource,
    SpanAttributes['spancost.price.key'] AS PriceKey,
    SpanAttributes['spancost.price.version'] AS PriceVersion,
    SpanAttributes['spancost.price.tier'] AS PriceTier,
    Duration AS DurationNs,
    StatusCode,
    SpanAttributes['error.type'] AS ErrorType,
    if(SpanAttributes['gen_ai.response.finish_reasons'] != '',
       JSONExtractString(SpanAttributes['gen_ai.response.finish_reasons'], 1),
       SpanAttributes['anthropic.message.stop_reason']) AS FinishReason
FROM {database}.{otel_traces}
WHERE (SpanAttributes['gen_ai.operation.name'] IN ('chat', 'text_completion', 'embeddings', 'generate_content')
       OR (SpanAttributes['gen_ai.operation.name'] = ''
           AND (SpanAttributes['gen_ai.request.model'] != '' OR SpanAttributes['gen_ai.response.model'] != '')
           AND (SpanAttributes['gen_ai.usage.input_tokens'] != ''
                OR SpanAttributes['gen_ai.usage.output_tokens'] != '')))
  AND SpanAttributes['spancost.duplicate_of'] = ''

