"""One runtime's structured log: JSON lines (SCF ships stdout to CLS), secrets redacted,
the SCF invocation's ``request_id`` on every record.

powertools' ``Logger`` configures the process-wide stdlib logger named after the service,
so a second runtime in one process (a test, the CLI, ``cbsnap serve``) would re-point the
first one's handler and stream — and with them its redactor. Here each runtime owns a
private ``logging.Logger`` (never registered with the logging manager) formatted by
powertools' ``LambdaPowertoolsFormatter``, so nothing is shared between runtimes.
"""

from __future__ import annotations

import functools
import json
import logging
import sys
from contextvars import ContextVar
from typing import IO, Any

from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from cbsnap.jsonsafe import safe_dumps
from cbsnap.sinks import Redactor

# The invocation being served on this thread of control (SCF runs one at a time per
# instance; `cbsnap serve` may run several on threads, each with its own context).
_request_id: ContextVar[str | None] = ContextVar("cbsnap_request_id", default=None)


class _Formatter(LambdaPowertoolsFormatter):
    def __init__(self, redactor: Redactor, service: str) -> None:
        # Every line valid UTF-8 JSON, whatever a record holds (NaN, a lone surrogate): a line
        # stdout cannot encode is dropped whole, results and all (cbsnap.jsonsafe).
        super().__init__(json_serializer=functools.partial(safe_dumps, separators=(",", ":")))
        self.redact = redactor
        self.append_keys(service=service)

    def format(self, record: logging.LogRecord) -> str:
        request_id = _request_id.get()
        if request_id and not hasattr(record, "request_id"):
            record.request_id = request_id
        return self.redact(super().format(record))


class Log:
    """A small structured logger: ``info``/``warning``/``error``/``exception`` with ``extra`` keys."""

    def __init__(
        self, service: str, redactor: Redactor, *, stream: IO[str] | None = None, level: str = "INFO"
    ) -> None:
        self._logger = logging.Logger(f"cbsnap.{service}")  # private: not in logging's registry
        known = isinstance(logging.getLevelName(level.upper()), int)  # 3.10 has no getLevelNamesMapping
        self._logger.setLevel(level.upper() if known else "INFO")
        self._logger.propagate = False
        self._handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
        self._formatter = _Formatter(redactor, service)
        self._handler.setFormatter(self._formatter)
        self._logger.addHandler(self._handler)

    @staticmethod
    def begin_invocation(request_id: str | None) -> None:
        """Stamp ``request_id`` on every record logged from here on in this context."""
        _request_id.set(request_id or None)

    def info(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        """An INFO record."""
        self._logger.info(message, extra=extra, stacklevel=2)

    def warning(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        """A WARNING record."""
        self._logger.warning(message, extra=extra, stacklevel=2)

    def error(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        """An ERROR record."""
        self._logger.error(message, extra=extra, stacklevel=2)

    def always(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        """An INFO line written whatever the configured level, with ``extra`` keys taken as they
        are: the metrics line (:mod:`cbsnap.metrics`) must reach CLS even at
        POWERTOOLS_LOG_LEVEL=WARNING, and its field names (``created``…) would collide with
        ``LogRecord`` attributes if they went through ``extra=``."""
        record = self._logger.makeRecord(
            self._logger.name, logging.INFO, __file__, 0, message, (), None, "always"
        )
        line = {**json.loads(self._formatter.format(record)), **(extra or {})}
        text = self._formatter.redact(safe_dumps(line, separators=(",", ":")))
        self._handler.acquire()
        try:
            self._handler.stream.write(text + "\n")
            self._handler.flush()
        finally:
            self._handler.release()

    def exception(self, message: str, *, extra: dict[str, Any] | None = None) -> None:
        """An ERROR record with the current exception's traceback."""
        self._logger.exception(message, extra=extra, stacklevel=2)
