"""Demo helpers: a local fake LLM provider for driving instrumented SDK calls."""
