"""Logging for every process: plain lines, or one JSON object per line with
CUTOUT_LOG_FORMAT=json; either way every line written while a task works on an item carries
that item (``shot_id=…``), so one shot's story can be pulled out of a fleet's logs."""

from __future__ import annotations

import json
import logging
import sys
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

_context: ContextVar[dict] = ContextVar("cutout_log_context", default={})
TEXT_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s%(context)s"


@contextmanager
def context(**fields):
    """Every log line inside carries these fields (nested contexts add to each other)."""
    token = _context.set({**_context.get(), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class _ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        fields = _context.get()
        record.fields = fields
        record.context = "".join(f" {k}={v}" for k, v in fields.items())
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                **getattr(record, "fields", {})}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def configure(level: int = logging.INFO, fmt: str = "text") -> None:
    """The root logger writes to stderr in `fmt` (Settings.log_format: text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_ContextFilter())
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
