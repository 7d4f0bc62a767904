-- Migration to schema 3: llm_calls drops the view's block of a replayed batch.
ALTER TABLE {database}.{llm_calls} {on_cluster} MODIFY SETTING {dedup_window}
