-- Migration to schema 3: the trace-id lookup drops the blocks of a replayed batch too.
ALTER TABLE {database}.{otel_traces_trace_id_ts} {on_cluster} MODIFY SETTING {dedup_window}
