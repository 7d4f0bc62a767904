"""The spool: batches the store could not take, kept on disk in order until they are in ClickHouse.

A directory of segment files, `<sequence>.spool`, appended to in order. Each record is one batch:

    magic "SPC1" | state (1 byte) | format (1) | pad (2) | payload length (4) | rows (4) | crc32 (4) |
    token (16) | payload (the rows, marshalled)

The crc covers length, rows, token and payload, so a record torn by a crash (the process killed in
the middle of a write) or damaged on disk is detected when the spool is opened and skipped, never
replayed as garbage; reading resumes at the next record's magic. An append is fsynced before it
returns: that is what lets the pipeline acknowledge a request whose rows are only here.

Records are acknowledged (their state byte set) once their rows are in ClickHouse; a segment is
deleted when every record in it is acknowledged. A restart appends to a new segment and replays
the records still pending, oldest first. The token travels with the record, so the replay carries
the same `insert_deduplication_token` as the first attempt and ClickHouse drops it if that attempt
had in fact succeeded. Only the pipeline's writer thread calls a spool.
"""

from __future__ import annotations

import logging
import marshal
import os
import struct
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger("spancost.collector")

MAGIC = b"SPC1"
_HEADER = struct.Struct("<4sBBxxIII16s")
_COVERED = struct.Struct("<II16s")  # the header fields the crc covers, ahead of the payload
_PENDING, _DONE = 0, 1
_STATE_OFFSET = 4
_FORMAT_MARSHAL = 1
_SUFFIX = ".spool"


class SpoolError(OSError):
    """The spool directory could not be written or read; the message names the failed step."""


class SpoolFull(SpoolError):
    """Appending the batch would take the spool past its size limit."""


@dataclass(frozen=True)
class SpoolRecord:
    """Where one pending batch is: its segment, offset and size, and what it holds."""

    segment: int
    offset: int
    length: int
    rows: int
    token: bytes


@dataclass
class _Segment:
    path: Path
    size: int
    pending: int = 0


class Spool:
    """Segment files in `directory`, at most `max_bytes` in all, each at most about `segment_bytes`."""

    def __init__(self, directory: Path, *, max_bytes: int, segment_bytes: int, fsync: bool = True) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes
        self._fsync = fsync
        self._segments: dict[int, _Segment] = {}
        self._pending: deque[SpoolRecord] = deque()
        self._active: int | None = None
        self._active_fd: int | None = None
        self._next_segment = 1
        self.pending_rows = 0
        self.total_bytes = 0
        """Bytes of the segment files (kept as a number, so that other threads can read it)."""
        self.skipped_bytes = 0
        """Bytes of torn or damaged records found (and skipped) when the spool was opened."""

    # --- opening --------------------------------------------------------------------------------

    def open(self) -> None:
        """Create the directory or read what a previous run left: every pending record, in order."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            paths = sorted(
                (path for path in self.directory.glob(f"*{_SUFFIX}") if path.stem.isdigit()), key=_sequence
            )
            for path in paths:
                self._scan(path)
        except OSError as err:
            raise SpoolError(f"spool open {self.directory}: {err}") from err
        if paths:
            self._next_segment = _sequence(paths[-1]) + 1
        if self._pending:
            logger.warning(
                "spancost: the spool %s holds %d batches (%d spans) from an earlier run; replaying them",
                self.directory,
                len(self._pending),
                self.pending_rows,
            )

    def _scan(self, path: Path) -> None:
        data = path.read_bytes()
        number = _sequence(path)
        segment = _Segment(path, len(data))
        position = 0
        while position + _HEADER.size <= len(data):
            magic, state, _fmt, length, rows, crc, token = _HEADER.unpack_from(data, position)
            end = position + _HEADER.size + length
            payload = data[position + _HEADER.size : end]
            if magic != MAGIC or end > len(data) or _crc(length, rows, token, payload) != crc:
                following = data.find(MAGIC, position + 1)
                following = len(data) if following < 0 else following
                self.skipped_bytes += following - position
                logger.warning("spancost: spool %s: skipped a torn or damaged record at %d", path, position)
                position = following
                continue
            if state != _DONE:
                self._pending.append(SpoolRecord(number, position, end - position, rows, token))
                self.pending_rows += rows
                segment.pending += 1
            position = end
        self.skipped_bytes += len(data) - position
        if segment.pending:
            self._segments[number] = segment
            self.total_bytes += segment.size
        else:
            path.unlink()

    # --- appending ------------------------------------------------------------------------------

    def append(self, token: bytes, rows: list[list[Any]]) -> SpoolRecord:
        """Write one batch and fsync it; raises `SpoolFull` or `SpoolError`."""
        try:
            payload = marshal.dumps(rows, 4)
        except ValueError as err:
            raise SpoolError(f"spool append: a row holds a value that cannot be written: {err}") from err
        crc = _crc(len(payload), len(rows), token, payload)
        header = _HEADER.pack(MAGIC, _PENDING, _FORMAT_MARSHAL, len(payload), len(rows), crc, token)
        record = header + payload
        if self.total_bytes + len(record) > self.max_bytes:
            raise SpoolFull(
                f"spool append: {self.directory} is full ({self.total_bytes} of {self.max_bytes} bytes)"
            )
        try:
            number, fd = self._writable(len(record))
            segment = self._segments[number]
            offset = segment.size
            try:
                _write_all(fd, record)
                if self._fsync:
                    os.fsync(fd)
            except OSError:
                # Leave no partial record behind for the next append to follow.
                os.ftruncate(fd, offset)
                raise
        except OSError as err:
            self._seal()
            raise SpoolError(f"spool append to {self.directory}: {err}") from err
        segment.size += len(record)
        self.total_bytes += len(record)
        segment.pending += 1
        entry = SpoolRecord(number, offset, len(record), len(rows), token)
        self._pending.append(entry)
        self.pending_rows += len(rows)
        return entry

    def _writable(self, size: int) -> tuple[int, int]:
        if self._active is not None and self._active_fd is not None:
            active = self._segments[self._active]
            if active.size == 0 or active.size + size <= self.segment_bytes:
                return self._active, self._active_fd
            self._seal()
        number = self._next_segment
        self._next_segment += 1
        path = self.directory / f"{number:016d}{_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        if self._fsync:
            _fsync_directory(self.directory)
        self._segments[number] = _Segment(path, 0)
        self._active, self._active_fd = number, fd
        return number, fd

    def _seal(self) -> None:
        """Stop appending to the active segment (deleting it if nothing in it is pending)."""
        number, fd = self._active, self._active_fd
        self._active = self._active_fd = None
        if fd is not None:
            os.close(fd)
        if number is not None and self._segments[number].pending == 0:
            self._delete(number)

    # --- replaying ------------------------------------------------------------------------------

    def head(self) -> SpoolRecord | None:
        """The oldest pending record."""
        return self._pending[0] if self._pending else None

    def pending(self) -> Iterator[SpoolRecord]:
        return iter(list(self._pending))

    def read(self, record: SpoolRecord) -> list[list[Any]]:
        """The rows of a pending record, checked against its crc."""
        path = self._segments[record.segment].path
        try:
            with path.open("rb") as file:
                file.seek(record.offset)
                data = file.read(record.length)
        except OSError as err:
            raise SpoolError(f"spool read {path}: {err}") from err
        _magic, _state, _fmt, length, rows, crc, token = _HEADER.unpack_from(data)
        payload = data[_HEADER.size :]
        if len(payload) != length or _crc(length, rows, token, payload) != crc:
            raise SpoolError(f"spool read {path}: the record at {record.offset} is damaged")
        return marshal.loads(payload)

    def ack(self, record: SpoolRecord) -> None:
        """The record's rows are in ClickHouse: mark it done, delete its segment once all are done.

        If the mark cannot be written the record is still forgotten for this run (a restart would
        replay it, and ClickHouse drop it by its token); the error is raised after."""
        segment = self._segments[record.segment]
        failure: OSError | None = None
        try:
            fd = os.open(segment.path, os.O_WRONLY)
            try:
                # One byte, not fsynced: if it is lost, the replay is sent again and dropped by its token.
                os.pwrite(fd, bytes([_DONE]), record.offset + _STATE_OFFSET)
            finally:
                os.close(fd)
        except OSError as err:
            failure = err
        if self._pending and self._pending[0] == record:
            self._pending.popleft()
        else:
            self._pending.remove(record)
        self.pending_rows -= record.rows
        segment.pending -= 1
        if segment.pending == 0:
            if record.segment == self._active:
                self._seal()
            else:
                self._delete(record.segment)
        if failure is not None:
            raise SpoolError(f"spool ack in {segment.path}: {failure}") from failure

    def _delete(self, number: int) -> None:
        segment = self._segments.pop(number)
        self.total_bytes -= segment.size
        try:
            segment.path.unlink()
        except FileNotFoundError:
            pass
        except OSError as err:
            # Every record in it is done: a leftover file is replayed as nothing.
            logger.warning("spancost: spool: cannot delete %s: %s", segment.path, err)

    # --- state ----------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._pending)

    def close(self) -> None:
        """Close the active segment; pending records stay for the next run."""
        self._seal()


def _crc(length: int, rows: int, token: bytes, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(_COVERED.pack(length, rows, token)))


def _sequence(path: Path) -> int:
    return int(path.stem)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_directory(directory: Path) -> None:
    """Make a new segment's name durable, not only its content."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
