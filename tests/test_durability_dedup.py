"""Exactly once: what ClickHouse does with a batch sent twice, and what the pipeline does with a replay
and with a client's retry, in otel_traces and in every table the views feed (llm_calls, llm_daily)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import pretend_schema_version
from durability_process import (
    SPANS_PER_REQUEST,
    is_model_call,
    model_call_counts,
    request_rows,
    stored_ids,
    wait_until,
)

from spancost.collector.dedup import new_token
from spancost.collector.pipeline import BatchingPipeline, PipelineConfig
from spancost.collector.schema import DEDUP_WINDOW_BLOCKS, SCHEMA_VERSION, SchemaConfig, apply_schema
from spancost.collector.sink import ClickHouseSink, insert_rows
from spancost.collector.spool import Spool

CALLS_PER_REQUEST = sum(1 for span in range(SPANS_PER_REQUEST) if is_model_call(span))
DEDUP_TABLES = ("otel_traces", "otel_traces_trace_id_ts", "llm_calls", "llm_daily")


@pytest.fixture
def sink(chdb_dir: Path, store_config: SchemaConfig, store) -> Iterator[ClickHouseSink]:
    opened = ClickHouseSink(f"chdb://{chdb_dir}", database=store_config.database)
    yield opened
    opened.close()


@pytest.fixture
def pipelines(chdb_dir: Path, store_config: SchemaConfig, tmp_path: Path) -> Iterator[Any]:
    made: list[BatchingPipeline] = []

    def start(**settings: Any) -> BatchingPipeline:
        settings.setdefault("spool_dir", tmp_path / "spool")
        settings.setdefault("max_batch_delay_s", 0.01)
        pipeline = BatchingPipeline.for_store(
            f"chdb://{chdb_dir}", database=store_config.database, config=PipelineConfig(**settings)
        )
        pipeline.start()
        made.append(pipeline)
        return pipeline

    yield start
    for pipeline in made:
        pipeline.stop(10)


def exactly_once(store, *requests: int) -> None:
    """otel_traces holds each span of `requests` once, and every view-fed table counts each call once."""
    expected = {(row[1], row[2]) for request in requests for row in request_rows(request)}
    assert stored_ids(store) == dict.fromkeys(expected, 1)
    calls = len(requests) * CALLS_PER_REQUEST
    assert model_call_counts(store) == (calls, calls, calls)
    traces = store.query("SELECT count() FROM otel_traces_trace_id_ts").single_value()
    assert traces <= len(requests) * 2  # one row per trace and insert block, never one per duplicate


# --- ClickHouse itself ----------------------------------------------------------------------------------


def create_table_query(store, table: str) -> str:
    return store.query(
        "SELECT create_table_query FROM system.tables"
        " WHERE database = currentDatabase() AND name = {t:String}",
        {"t": table},
    ).single_value()


def test_every_table_a_batch_reaches_keeps_a_deduplication_window(store) -> None:
    for table in DEDUP_TABLES:
        ddl = create_table_query(store, table)
        assert f"non_replicated_deduplication_window = {DEDUP_WINDOW_BLOCKS}" in ddl, table


def test_a_version_2_store_gets_the_window_on_upgrade(store) -> None:
    for table in DEDUP_TABLES:
        store.command(f"ALTER TABLE {table} RESET SETTING non_replicated_deduplication_window")
        assert "non_replicated_deduplication_window" not in create_table_query(store, table)
    pretend_schema_version(store, 2)

    assert apply_schema(store.client, store.config) == SCHEMA_VERSION == 6
    for table in DEDUP_TABLES:
        ddl = create_table_query(store, table)
        assert f"non_replicated_deduplication_window = {DEDUP_WINDOW_BLOCKS}" in ddl, table


def test_clickhouse_drops_a_batch_sent_again_under_its_token_in_every_view(
    store, sink: ClickHouseSink
) -> None:
    rows = request_rows(1) + request_rows(2)  # spans over two days: one block per partition
    token = new_token().hex()
    sink.insert(rows, token)
    sink.insert(rows, token)
    sink.insert(list(reversed(rows)), token)  # the token, not the content, identifies the batch

    exactly_once(store, 1, 2)


def test_without_a_window_clickhouse_would_store_the_replay_twice(store, sink: ClickHouseSink) -> None:
    """The control for the test above: the settings, not luck, make the difference."""
    for table in DEDUP_TABLES:
        store.command(f"ALTER TABLE {table} MODIFY SETTING non_replicated_deduplication_window = 0")
    token = new_token().hex()
    sink.insert(request_rows(1), token)
    sink.insert(request_rows(1), token)

    assert set(stored_ids(store).values()) == {2}
    assert model_call_counts(store)[2] == 2 * CALLS_PER_REQUEST


def test_a_replay_completes_a_view_whose_write_was_cut_and_stays_idempotent(
    store, sink: ClickHouseSink
) -> None:
    """The first attempt reached otel_traces but not llm_calls (as if the process died between the
    two); the replay is dropped by otel_traces and still written by the view, once."""
    from spancost.collector.schema import render_statements

    create_view = dict(render_statements(store.config))["llm_calls_mv.sql"]
    sink.open()  # its schema step would recreate the view
    store.command("DROP VIEW llm_calls_mv")
    token = new_token().hex()
    sink.insert(request_rows(1), token)
    assert model_call_counts(store) == (0, 0, 0)
    store.command(create_view)

    sink.insert(request_rows(1), token)
    sink.insert(request_rows(1), token)

    exactly_once(store, 1)


def test_the_halves_of_a_refused_batch_are_dropped_on_replay_too(store, sink: ClickHouseSink) -> None:
    rows = request_rows(1)
    rows[3][0] = "not a timestamp"
    refused: list[tuple[str, str]] = []
    token = new_token().hex()
    for _ in range(2):
        insert_rows(
            sink_client(sink), store.database, rows, token=token, reject=lambda ids, _: refused.append(ids)
        )

    assert refused == [(rows[3][1], rows[3][2])] * 2
    assert set(stored_ids(store).values()) == {1}
    assert len(stored_ids(store)) == SPANS_PER_REQUEST - 1


def sink_client(sink: ClickHouseSink) -> Any:
    sink.open()
    return sink._client


# --- the pipeline ---------------------------------------------------------------------------------------


def test_a_spooled_batch_clickhouse_had_already_taken_is_not_stored_again(
    store, pipelines, sink: ClickHouseSink, tmp_path: Path
) -> None:
    """The crash between 'ClickHouse took the batch' and 'the spool record was deleted': the restarted
    pipeline replays the record under its first token, and ClickHouse drops it."""
    spool = Spool(tmp_path / "spool", max_bytes=1 << 24, segment_bytes=1 << 20)
    spool.open()
    taken = spool.append(new_token(), request_rows(1))
    spool.append(new_token(), request_rows(2))  # the next batch, never inserted
    spool.close()
    sink.insert(request_rows(1), taken.token.hex())

    pipeline = pipelines()
    wait_until(lambda: not pipeline.stats()["spool_records"], "the replay")

    exactly_once(store, 1, 2)
    assert pipeline.stats()["replayed"] == 2 * SPANS_PER_REQUEST
    assert list((tmp_path / "spool").glob("*.spool")) == []


def test_a_client_retrying_a_request_whose_answer_was_lost_is_stored_once(store, pipelines) -> None:
    pipeline = pipelines()
    pipeline.submit(request_rows(1), timeout=30)
    pipeline.submit(request_rows(1) + request_rows(2), timeout=30)  # the retry, with a new request
    pipeline.submit(request_rows(2), timeout=30)

    exactly_once(store, 1, 2)
    assert pipeline.stats()["deduplicated"] == 2 * SPANS_PER_REQUEST


def test_a_retry_reaching_a_restarted_collector_is_stored_once(store, pipelines) -> None:
    first = pipelines()
    first.submit(request_rows(1), timeout=30)
    first.stop(10)

    restarted = pipelines()
    restarted.submit(request_rows(1), timeout=30)
    restarted.submit(request_rows(2), timeout=30)

    exactly_once(store, 1, 2)
    assert restarted.stats()["deduplicated"] == SPANS_PER_REQUEST


def test_a_retry_of_spans_still_in_the_spool_after_a_restart_is_stored_once(
    store, pipelines, tmp_path: Path
) -> None:
    spool = Spool(tmp_path / "spool", max_bytes=1 << 24, segment_bytes=1 << 20)
    spool.open()
    spool.append(new_token(), request_rows(1))
    spool.close()

    pipeline = pipelines(recent_window_s=0)  # only the spool can tell that these spans are known
    pipeline.submit(request_rows(1), timeout=30)
    wait_until(lambda: not pipeline.stats()["spool_records"], "the replay")

    exactly_once(store, 1)
    assert pipeline.stats()["deduplicated"] == SPANS_PER_REQUEST


def test_spans_without_ids_are_never_taken_for_duplicates(store, pipelines) -> None:
    rows = request_rows(1, spans=4)
    for row in rows:
        row[1] = row[2] = ""
    pipeline = pipelines()
    pipeline.submit(rows, timeout=30)

    assert store.query("SELECT count() FROM otel_traces").single_value() == 4
