CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.llm_daily_mv {on_cluster}
TO {database}.{llm_daily}
AS SELECT
    toDate(Timestamp) AS Date,
    ServiceName,
    Provider,
    Model,
    PromptName,
    PromptVersion,
    WorkspaceId,
    Feature,
    ExperimentVariant,
    CostStatus,
    count() AS Calls,
    countIf(StatusCode = 'Error') AS Errors,
    sum(InputTokens) AS InputTokens,
    sum(OutputTokens) AS OutputTokens,
    sum(CacheReadTokens) AS CacheReadTokens,
    sum(CacheWriteTokens) AS CacheWriteTokens,
    sum(ReasoningTokens) AS ReasoningTokens,
    toDecimal128(sum(CostUSD), 9) AS CostUSD,
    sum(DurationNs) AS DurationNs
FROM {database}.{llm_calls}
GROUP BY Date, ServiceName, Provider, Model, PromptName, PromptVersion, WorkspaceId, Feature, ExperimentVariant,
         CostStatus
