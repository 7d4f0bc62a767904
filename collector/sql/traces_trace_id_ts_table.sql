-- The upstream exporter's trace-id lookup table: when each trace starts and ends, found by TraceId.
-- The Grafana ClickHouse plugin's trace view reads it to bound its scan of otel_traces.
CREATE TABLE IF NOT EXISTS {database}.{otel_traces_trace_id_ts} {on_cluster} (
    TraceId String CODEC(ZSTD(1)),
    Start SimpleAggregateFunction(min, DateTime) CODEC(ZSTD(1)),
    End SimpleAggregateFunction(max, DateTime) CODEC(ZSTD(1))
) ENGINE = {engine}
PARTITION BY toStartOfWeek(Start)
ORDER BY (TraceId)
{ttl}
SETTINGS index_granularity = 8192, ttl_only_drop_parts = 1, {dedup_window}
