-- Daily totals of llm_calls by the dimensions the dashboards slice by (users are left out: too many).
-- SummingMergeTree: read it with sum() and GROUP BY, since parts merge in the background.
CREATE TABLE IF NOT EXISTS {database}.{llm_daily} {on_cluster} (
    Date Date,
    ServiceName LowCardinality(String),
    Provider LowCardinality(String),
    Model LowCardinality(String),
    PromptName LowCardinality(String),
    PromptVersion LowCardinality(String),
    WorkspaceId LowCardinality(String),
    Feature LowCardinality(String),
    ExperimentVariant LowCardinality(String),
    CostStatus LowCardinality(String),
    Calls UInt64,
    Errors UInt64,
    InputTokens UInt64,
    OutputTokens UInt64,
    CacheReadTokens UInt64,
    CacheWriteTokens UInt64,
    ReasoningTokens UInt64,
    CostUSD Decimal(38, 9),
    DurationNs UInt64
) ENGINE = {engine}
PARTITION BY toYYYYMM(Date)
ORDER BY (Date, ServiceName, Provider, Model, PromptName, PromptVersion, WorkspaceId, Feature, ExperimentVariant,
          CostStatus)
{ttl}
SETTINGS {dedup_window}
