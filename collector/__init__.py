"""The collector side: ClickHouse schema, the span exporter, and (later) the OTLP receivers and spool."""
