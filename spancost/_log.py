"""Logging that cannot flood an application: each distinct problem is logged once."""

from __future__ import annotations

import logging
import threading

_seen: set[str] = set()
_lock = threading.Lock()
_MAX_KEYS = 10_000


def log_once(
    logger: logging.Logger,
    key: str,
    message: str,
    *args: object,
    exc_info: bool = False,
    level: int = logging.WARNING,
) -> None:
    """Log `message` at `level` the first time `key` is seen, at DEBUG afterwards."""
    with _lock:
        first = key not in _seen
        if first and len(_seen) < _MAX_KEYS:
            _seen.add(key)
    logger.log(level if first else logging.DEBUG, message, *args, exc_info=exc_info)


def forget_logged() -> None:
    """Forget what was logged (tests use this to see a warning again)."""
    with _lock:
        _seen.clear()
