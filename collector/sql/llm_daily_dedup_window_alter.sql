-- Migration to schema 3: llm_daily drops the view's block of a replayed batch, so no call is summed twice.
ALTER TABLE {database}.{llm_daily} {on_cluster} MODIFY SETTING {dedup_window}
