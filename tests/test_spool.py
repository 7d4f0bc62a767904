"""The spool on disk: batches come back in order after a restart, torn and damaged records are skipped,
acknowledged ones are not replayed, and the size limit holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from durability_process import request_rows

from spancost.collector.spool import MAGIC, Spool, SpoolError, SpoolFull


def opened(directory: Path, **limits: int) -> Spool:
    spool = Spool(
        directory,
        max_bytes=limits.get("max_bytes", 1 << 24),
        segment_bytes=limits.get("segment_bytes", 1 << 20),
    )
    spool.open()
    return spool


def replayed(directory: Path) -> list[tuple[bytes, list]]:
    spool = opened(directory)
    try:
        return [(record.token, spool.read(record)) for record in spool.pending()]
    finally:
        spool.close()


def test_batches_come_back_in_order_after_a_restart_with_their_tokens(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    batches = [(bytes([n]) * 16, request_rows(n, spans=3)) for n in range(5)]
    for token, rows in batches:
        spool.append(token, rows)
    spool.close()

    assert replayed(tmp_path) == batches


def test_rows_survive_exactly_as_the_receivers_made_them(tmp_path: Path) -> None:
    shared = {"service.name": "x"}
    row = request_rows(0, spans=1)[0]
    row[8] = shared
    row[11] = {"note": "lone surrogate \udcff, emoji \U0001f600", "empty": ""}
    row[15] = [1, 2]
    row[17] = [{"k": "v"}, {}]
    spool = opened(tmp_path)
    spool.append(b"t" * 16, [row])
    spool.close()

    assert replayed(tmp_path) == [(b"t" * 16, [row])]


def test_a_record_torn_by_a_crash_is_skipped_and_the_earlier_ones_replayed(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    first = request_rows(1, spans=2)
    spool.append(b"a" * 16, first)
    spool.append(b"b" * 16, request_rows(2, spans=2))
    spool.close()
    (segment,) = tmp_path.glob("*.spool")
    data = segment.read_bytes()
    segment.write_bytes(data[: len(data) - 7])  # the process died in the middle of the second write

    spool = opened(tmp_path)
    assert [record.token for record in spool.pending()] == [b"a" * 16]
    assert spool.skipped_bytes > 0
    # Appending after the restart goes to a new segment: the torn tail is never followed.
    spool.append(b"c" * 16, request_rows(3, spans=2))
    spool.close()
    assert [token for token, _ in replayed(tmp_path)] == [b"a" * 16, b"c" * 16]
    assert replayed(tmp_path)[0][1] == first


def test_a_damaged_record_is_skipped_and_reading_resumes_at_the_next(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    for n in range(3):
        spool.append(bytes([n]) * 16, request_rows(n, spans=2))
    spool.close()
    (segment,) = tmp_path.glob("*.spool")
    data = bytearray(segment.read_bytes())
    second = data.find(MAGIC, 1)
    data[second + 60] ^= 0xFF  # a flipped bit inside the second record's payload
    segment.write_bytes(bytes(data))

    assert [token for token, _ in replayed(tmp_path)] == [bytes([0]) * 16, bytes([2]) * 16]


def test_acknowledged_batches_are_not_replayed_and_their_segments_are_deleted(tmp_path: Path) -> None:
    spool = opened(tmp_path, segment_bytes=1 << 16)
    records = [spool.append(bytes([n]) * 16, request_rows(n)) for n in range(12)]
    assert len(list(tmp_path.glob("*.spool"))) > 1, "the records span several segments"
    for record in records[:5]:
        spool.ack(record)
    spool.ack(records[7])  # out of order: a late insert that succeeded
    spool.close()

    assert [token[0] for token, _ in replayed(tmp_path)] == [5, 6, 8, 9, 10, 11]

    spool = opened(tmp_path)
    for record in spool.pending():
        spool.ack(record)
    spool.close()
    assert list(tmp_path.glob("*.spool")) == []
    assert replayed(tmp_path) == []


def test_a_full_spool_refuses_the_batch_and_takes_batches_again_once_replayed(tmp_path: Path) -> None:
    spool = opened(tmp_path, max_bytes=1 << 16, segment_bytes=1 << 16)
    records, refusal = [], None
    for n in range(1000):
        try:
            records.append(spool.append(bytes([n % 256]) * 16, request_rows(n)))
        except SpoolFull as err:
            refusal = err
            break
    assert "spool append" in str(refusal)
    assert spool.total_bytes <= 1 << 16
    assert len(spool) == len(records)

    for record in records:
        spool.ack(record)
    assert spool.total_bytes == 0
    spool.append(b"z" * 16, request_rows(0))
    spool.close()


def test_a_row_that_cannot_be_written_names_the_failed_step(tmp_path: Path) -> None:
    spool = opened(tmp_path)
    with pytest.raises(SpoolError, match="spool append"):
        spool.append(b"x" * 16, [[object()]])
    spool.close()
    assert replayed(tmp_path) == []


def test_an_unusable_directory_fails_at_open(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SpoolError, match="spool open"):
        Spool(blocker / "spool", max_bytes=1 << 20, segment_bytes=1 << 16).open()
