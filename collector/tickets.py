"""The bounded queue between the submitters and the writer thread.

A request's rows become a `Ticket` that waits in the queue. The writer takes rows in order into
batches of at most `max_batch_rows` (a large request is split across batches), and settles each
slice once its rows are durable; the ticket is done when every slice is. Admission counts the rows
held in memory, queued or in a batch being written, so memory is bounded by `max_queue_rows`
(plus one request, so that a request larger than the queue can still get through an empty one).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class Ticket:
    """One submitted request: its rows, how many are taken into batches, and its outcome."""

    __slots__ = ("_callbacks", "done", "enqueued_at", "error", "outstanding", "rows", "taken")

    def __init__(self, rows: list[list[Any]]) -> None:
        self.rows = rows
        self.taken = 0
        self.outstanding = 0
        self.error: Exception | None = None
        self.enqueued_at = time.monotonic()
        self.done = threading.Event()
        self._callbacks: list[Callable[[], None]] = []

    def on_done(self, callback: Callable[[], None]) -> None:
        """Call `callback` (from the writer thread) when the ticket is done, at once if it is; it may
        be called twice if the ticket finishes meanwhile, so it must be idempotent."""
        self._callbacks.append(callback)
        if self.done.is_set():
            callback()

    def _finish(self) -> None:
        self.done.set()
        for callback in self._callbacks:
            callback()


@dataclass
class Batch:
    """Rows taken from the queue for one insert, and the ticket slices they came from."""

    rows: list[list[Any]] = field(default_factory=list)
    slices: list[tuple[Ticket, int]] = field(default_factory=list)
    settled: bool = False


class Full(Exception):
    """The queue holds `max_queue_rows` already."""


class Closed(Exception):
    """The pipeline is stopping: no more submissions."""


class RequestQueue:
    def __init__(self, *, max_queue_rows: int, max_batch_rows: int, max_batch_delay_s: float) -> None:
        self.max_queue_rows = max_queue_rows
        self.max_batch_rows = max_batch_rows
        self.max_batch_delay_s = max_batch_delay_s
        self._cond = threading.Condition()
        self._tickets: deque[Ticket] = deque()
        self.queued_rows = 0
        """Rows waiting to be taken into a batch."""
        self.held_rows = 0
        """Rows in memory: queued, or in a batch not yet settled."""
        self.closed = False

    def put(self, rows: list[list[Any]]) -> Ticket:
        ticket = Ticket(rows)
        with self._cond:
            if self.closed:
                raise Closed()
            if self.held_rows and self.held_rows + len(rows) > self.max_queue_rows:
                raise Full()
            self._tickets.append(ticket)
            self.queued_rows += len(rows)
            self.held_rows += len(rows)
            if self.queued_rows >= self.max_batch_rows or len(self._tickets) == 1:
                self._cond.notify_all()
        return ticket

    def abandon(self, ticket: Ticket, error: Exception) -> None:
        """The submitter stopped waiting: drop the ticket if none of its rows was taken yet."""
        with self._cond:
            if ticket.taken or ticket.done.is_set():
                return
            try:
                self._tickets.remove(ticket)
            except ValueError:
                return
            self.queued_rows -= len(ticket.rows)
            self.held_rows -= len(ticket.rows)
            ticket.error = error
        ticket._finish()

    def due(self) -> bool:
        """A batch is ready: full, old enough, or the queue is closing."""
        with self._cond:
            return self._due(time.monotonic())

    def _due(self, now: float) -> bool:
        if not self._tickets:
            return False
        return (
            self.closed
            or self.queued_rows >= self.max_batch_rows
            or now - self._tickets[0].enqueued_at >= self.max_batch_delay_s
        )

    def take(self, wait_s: float) -> Batch | None:
        """The next batch once one is due, waiting at most `wait_s` (or until `wake`)."""
        with self._cond:
            now = time.monotonic()
            if not self._due(now) and wait_s > 0:
                timeout = wait_s
                if self._tickets:
                    timeout = min(timeout, self._tickets[0].enqueued_at + self.max_batch_delay_s - now)
                self._cond.wait(max(timeout, 0.0))
                now = time.monotonic()
            if not self._due(now):
                return None
            batch = Batch()
            while self._tickets and len(batch.rows) < self.max_batch_rows:
                ticket = self._tickets[0]
                count = min(len(ticket.rows) - ticket.taken, self.max_batch_rows - len(batch.rows))
                if ticket.taken == 0 and count == len(ticket.rows):
                    batch.rows.extend(ticket.rows)
                else:
                    batch.rows.extend(ticket.rows[ticket.taken : ticket.taken + count])
                ticket.taken += count
                ticket.outstanding += 1
                batch.slices.append((ticket, count))
                if ticket.taken == len(ticket.rows):
                    self._tickets.popleft()
            self.queued_rows -= len(batch.rows)
            return batch

    def settle(self, batch: Batch, error: Exception | None = None) -> None:
        """The batch's rows are durable (or, with `error`, could not be made durable)."""
        finished = []
        with self._cond:
            if batch.settled:
                return
            batch.settled = True
            for ticket, count in batch.slices:
                self.held_rows -= count
                ticket.outstanding -= 1
                if error is not None and ticket.error is None:
                    ticket.error = error
                if ticket.outstanding == 0 and ticket.taken == len(ticket.rows):
                    finished.append(ticket)
            self._cond.notify_all()
        for ticket in finished:
            ticket._finish()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def close(self) -> None:
        """Refuse new tickets; what is queued is still taken (at once, without waiting to fill)."""
        with self._cond:
            self.closed = True
            self._cond.notify_all()

    def empty(self) -> bool:
        with self._cond:
            return not self._tickets
