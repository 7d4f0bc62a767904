-- Migration to schema 3: otel_traces drops a block whose deduplication token it has seen (a replayed batch).
ALTER TABLE {database}.{otel_traces} {on_cluster} MODIFY SETTING {dedup_window}
