-- One row per agent or workflow span: the runs the "agent runs" dashboard lists. What a run cost is
-- summed from its model calls in llm_calls (by TraceId), not from the span's own roll-up attributes,
-- so that runs traced by any instrumentation count the same way.
CREATE TABLE IF NOT EXISTS {database}.{agent_runs} {on_cluster} (
    Timestamp DateTime64(9) {read_codec},
    TraceId String CODEC(ZSTD(1)),
    {trace_key},
    SpanId String CODEC(ZSTD(1)),
    ParentSpanId String CODEC(ZSTD(1)),
    ServiceName LowCardinality(String),
    Operation LowCardinality(String),
    AgentName LowCardinality(String),
    PromptName LowCardinality(String),
    UserId String {read_codec},
    WorkspaceId LowCardinality(String),
    Feature LowCardinality(String),
    RunId String CODEC(ZSTD(1)),
    DurationNs UInt64 CODEC(T64, ZSTD(1)),
    StatusCode LowCardinality(String),
    INDEX idx_trace_id TraceId TYPE bloom_filter(0.001) GRANULARITY 1
) ENGINE = {engine}
-- By day, each day forced into one part an hour after its last insert: a partition of one part needs
-- no merging at FINAL (a span and its copies share a timestamp, so they share a partition).
PARTITION BY toDate(Timestamp)
ORDER BY (toDate(Timestamp), ServiceName, AgentName, TraceId, SpanId)
{ttl}
SETTINGS index_granularity = 8192, {dedup_window},
    min_age_to_force_merge_seconds = 3600, min_age_to_force_merge_on_partition_only = 1
