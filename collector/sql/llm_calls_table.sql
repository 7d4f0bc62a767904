-- One row per model call, typed: what every cost question is asked of.
-- ReplacingMergeTree keyed by the span: a span stored twice collapses to one row when parts merge; a
-- replayed batch never gets here twice (its deduplication token is dropped, see dedup_window).
CREATE TABLE IF NOT EXISTS {database}.{llm_calls} {on_cluster} (
    Timestamp DateTime64(9) {read_codec},
    TraceId String CODEC(ZSTD(1)),
    {trace_key},
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    ServiceVersion LowCardinality(String),
    Provider LowCardinality(String),
    Model LowCardinality(String),
    {provider_model},
    RequestModel LowCardinality(String),
    Operation LowCardinality(String),
    PromptName LowCardinality(String),
    PromptVersion LowCardinality(String),
    UserId String {read_codec},
    WorkspaceId LowCardinality(String),
    Feature LowCardinality(String),
    ExperimentVariant LowCardinality(String),
    EntryPoint LowCardinality(String),
    RunId String CODEC(ZSTD(1)),
    InputTokens UInt64,
    OutputTokens UInt64,
    CacheReadTokens UInt64,
    CacheWriteTokens UInt64,
    ReasoningTokens UInt64,
    CostUSD Decimal(18, 9),
    CostInputUSD Decimal(18, 9),
    CostOutputUSD Decimal(18, 9),
    CostCacheReadUSD Decimal(18, 9),
    CostCacheWriteUSD Decimal(18, 9),
    CostStatus LowCardinality(String),
    CostSource LowCardinality(String),
    PriceKey LowCardinality(String),
    PriceVersion LowCardinality(String),
    PriceTier LowCardinality(String),
    DurationNs UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String),
    ErrorType LowCardinality(String),
    FinishReason LowCardinality(String),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_user_id UserId TYPE bloom_filter(0.01) GRANULARITY 1
) ENGINE = {engine}
-- By day, each day forced into one part an hour after its last insert: a partition of one part needs
-- no merging at FINAL (a span and its copies share a timestamp, so they share a partition).
PARTITION BY toDate(Timestamp)
ORDER BY (toDate(Timestamp), ServiceName, PromptName, Model, TraceId, SpanId)
{ttl}
SETTINGS index_granularity = 8192, {dedup_window},
    min_age_to_force_merge_seconds = 3600, min_age_to_force_merge_on_partition_only = 1
