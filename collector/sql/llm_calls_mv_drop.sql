-- Migration to schema 2: the view is recreated to leave out duplicate model-call spans.
DROP VIEW IF EXISTS {database}.llm_calls_mv {on_cluster}
