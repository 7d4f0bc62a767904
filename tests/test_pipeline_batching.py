"""The ingest pipeline's queue and batches: acknowledged means stored, batches by size and time,
backpressure under overload, timeouts, asyncio, a clean stop, health and configuration."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from clickhouse_http import clickhouse_behind_proxy
from durability_process import request_rows, stored_ids, wait_until

from spancost.collector.ingest import Overloaded, Unavailable
from spancost.collector.pipeline import BatchingPipeline, PipelineConfig
from spancost.collector.schema import SchemaConfig

MakePipeline = Callable[..., BatchingPipeline]


@pytest.fixture
def make_pipeline(chdb_dir: Path, store_config: SchemaConfig, tmp_path: Path) -> Iterator[MakePipeline]:
    """Pipelines on the test's database (the session's chdb, or `dsn`), each with the test's spool."""
    made: list[BatchingPipeline] = []

    def make(dsn: str | None = None, **settings: Any) -> BatchingPipeline:
        settings.setdefault("spool_dir", tmp_path / "spool")
        pipeline = BatchingPipeline.for_store(
            dsn or f"chdb://{chdb_dir}", database=store_config.database, config=PipelineConfig(**settings)
        )
        made.append(pipeline)
        return pipeline

    yield make
    for pipeline in made:
        pipeline.stop(10)


def in_threads(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls concurrently; their results (or the exceptions they raised), in order."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as err:
            results[index] = err

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def ids_of(*requests: int) -> set[tuple[str, str]]:
    return {(row[1], row[2]) for request in requests for row in request_rows(request)}


def test_a_request_is_acknowledged_only_once_its_spans_are_in_clickhouse(store, make_pipeline) -> None:
    pipeline = make_pipeline(max_batch_delay_s=0.05)
    pipeline.start()
    in_threads(*(lambda n=n: pipeline.submit(request_rows(n), timeout=30) for n in range(6)))

    # Read at once, before stop(): acknowledged already means stored.
    assert stored_ids(store) == dict.fromkeys(ids_of(*range(6)), 1)
    stats = pipeline.stats()
    assert (stats["received"], stats["stored"], stats["spooled"], stats["queue_depth"]) == (240, 240, 0, 0)


def test_a_large_request_is_cut_into_batches_of_max_batch_rows(store, make_pipeline) -> None:
    pipeline = make_pipeline(max_batch_rows=100, max_batch_delay_s=0.05)
    pipeline.start()
    rows = [row for request in range(6) for row in request_rows(request)]  # 240 rows

    pipeline.submit(rows, timeout=30)

    assert pipeline.stats()["batches"] == 3
    assert stored_ids(store) == dict.fromkeys(ids_of(*range(6)), 1)


def test_requests_share_a_batch_once_it_is_full_without_waiting_for_the_delay(store, make_pipeline) -> None:
    pipeline = make_pipeline(max_batch_rows=80, max_batch_delay_s=3600)
    pipeline.start()

    results = in_threads(
        lambda: pipeline.submit(request_rows(1), timeout=60),
        lambda: pipeline.submit(request_rows(2), timeout=60),
    )

    assert results == [None, None]
    assert pipeline.stats()["batches"] == 1
    assert stored_ids(store) == dict.fromkeys(ids_of(1, 2), 1)


def test_a_full_queue_answers_overloaded_at_once_and_holds_no_more_rows(
    store, make_pipeline, chdb_dir: Path
) -> None:
    with clickhouse_behind_proxy(chdb_dir) as (_server, proxy):
        pipeline = make_pipeline(
            f"http://127.0.0.1:{proxy.port}",
            max_batch_rows=40,
            max_queue_rows=120,
            max_batch_delay_s=0.01,
            insert_deadline_s=60,
        )
        pipeline.start()
        proxy.set_mode("stall")  # the store takes nothing: the queue can only fill
        admitted = [
            threading.Thread(target=pipeline.submit, args=(request_rows(n),), kwargs={"timeout": 60})
            for n in range(3)
        ]
        for thread in admitted:
            thread.start()
        wait_until(lambda: pipeline.stats()["rows_inflight"] == 120, "the queue to fill")
        assert not pipeline.has_room()

        refused = 0
        for n in range(3, 50):
            with pytest.raises(Overloaded) as raised:
                pipeline.submit(request_rows(n), timeout=60)
            assert raised.value.retry_after_s > 0
            refused += 1
            assert pipeline.stats()["rows_inflight"] <= 120

        proxy.set_mode("up")
        for thread in admitted:
            thread.join()
        assert pipeline.has_room()
    assert refused == 47
    assert pipeline.stats()["overloaded_requests"] == 47
    assert stored_ids(store) == dict.fromkeys(ids_of(0, 1, 2), 1)


def test_a_request_not_durable_within_its_timeout_fails_and_is_left_out_if_still_queued(
    store, make_pipeline, chdb_dir: Path
) -> None:
    with clickhouse_behind_proxy(chdb_dir) as (_server, proxy):
        pipeline = make_pipeline(
            f"http://127.0.0.1:{proxy.port}", max_batch_rows=40, max_batch_delay_s=0.01, insert_deadline_s=60
        )
        pipeline.start()
        proxy.set_mode("stall")
        first = threading.Thread(target=pipeline.submit, args=(request_rows(1),), kwargs={"timeout": 60})
        first.start()
        stats = pipeline.stats
        wait_until(lambda: stats()["rows_inflight"] and not stats()["queue_depth"], "request 1 in a batch")

        with pytest.raises(Unavailable, match="not stored within"):
            pipeline.submit(request_rows(2), timeout=0.2)

        proxy.set_mode("up")
        first.join()
        assert pipeline.stats()["timed_out_requests"] == 1
    assert stored_ids(store) == dict.fromkeys(ids_of(1), 1)


def test_asyncio_submitters_are_acknowledged_and_refused_the_same_way(store, make_pipeline) -> None:
    pipeline = make_pipeline(max_batch_rows=40, max_queue_rows=40, max_batch_delay_s=3600)
    pipeline.start()

    async def main() -> list[Any]:
        return await asyncio.gather(
            pipeline.submit_async(request_rows(1), timeout=60),
            pipeline.submit_async(request_rows(2), timeout=60),
            return_exceptions=True,
        )

    first, second = asyncio.run(main())
    # The first fills the queue (and, being a full batch, is stored at once); the second arrived while
    # it was held and was refused without waiting.
    assert first is None
    assert isinstance(second, Overloaded)
    assert stored_ids(store) == dict.fromkeys(ids_of(1), 1)


def test_stop_flushes_every_queued_request_before_returning(store, make_pipeline) -> None:
    pipeline = make_pipeline(max_batch_rows=10_000, max_batch_delay_s=3600)
    pipeline.start()
    submitters = [
        threading.Thread(target=pipeline.submit, args=(request_rows(n),), kwargs={"timeout": 60})
        for n in range(4)
    ]
    for thread in submitters:
        thread.start()
    # All four wait for a batch that will not fill.
    wait_until(lambda: pipeline.stats()["queue_depth"] == 160, "four queued requests")

    assert pipeline.stop(30) is True
    for thread in submitters:
        thread.join()

    assert stored_ids(store) == dict.fromkeys(ids_of(*range(4)), 1)
    with pytest.raises(Unavailable, match="shutting down"):
        pipeline.submit(request_rows(9), timeout=1)
    assert not pipeline.healthy()


def test_a_row_the_table_refuses_is_left_out_and_counted(store, make_pipeline) -> None:
    pipeline = make_pipeline(max_batch_delay_s=0.01)
    pipeline.start()
    rows = request_rows(1)
    rows[5][0] = "not a timestamp"

    pipeline.submit(rows, timeout=30)

    assert pipeline.stats()["rejected"] == 1
    assert stored_ids(store) == dict.fromkeys(ids_of(1) - {(rows[5][1], rows[5][2])}, 1)
    assert pipeline.sink.rejected[-1][:2] == (rows[5][1], rows[5][2])


def test_health_follows_the_store_and_the_spool_room(store, make_pipeline, chdb_dir: Path) -> None:
    with clickhouse_behind_proxy(chdb_dir) as (_server, proxy):
        pipeline = make_pipeline(
            f"http://127.0.0.1:{proxy.port}",
            max_batch_delay_s=0.01,
            spool_max_bytes=1 << 16,
            spool_segment_bytes=1 << 16,
            probe_min_s=60,
            probe_max_s=60,
        )
        assert not pipeline.healthy()
        pipeline.start()
        assert pipeline.healthy()

        proxy.set_mode("down")
        pipeline.submit(request_rows(1), timeout=30)  # spooled
        assert pipeline.healthy()
        refusal = None
        for n in range(2, 100):
            try:
                pipeline.submit(request_rows(n), timeout=30)
            except Unavailable as err:
                refusal = err
                break
        assert "spool" in str(refusal)
        assert pipeline.stats()["store_up"] == 0
        assert not pipeline.healthy()
        proxy.set_mode("up")


def test_invalid_configuration_lists_every_problem() -> None:
    config = PipelineConfig(
        max_batch_rows=0, max_queue_rows=-1, max_batch_delay_s=0, probe_max_s=0.1, spool_max_bytes=1
    )
    problems = config.validate()
    text = "; ".join(problems)
    for name in (
        "max_batch_rows 0",
        "max_queue_rows -1",
        "max_batch_delay_s 0",
        "probe_max_s 0.1",
        "spool_max_bytes 1",
    ):
        assert name in text
    with pytest.raises(ValueError, match="invalid pipeline configuration"):
        BatchingPipeline.for_store("chdb:///nowhere", database="x", config=config)
    assert PipelineConfig().validate() == []
