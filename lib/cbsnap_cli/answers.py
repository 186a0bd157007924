"""Reading a handler's answer: its per-disk results, and whether it counts as success.

Two shapes come back (docs/triggers.md): the timer and queue handlers answer
``{"total", "succeeded", "results": [...], …}``; the webhook answers SCF's integrated response
``{"statusCode", "headers", "body"}`` whose JSON body holds either ``results`` (a batch) or the
one result at the top level (the seed's shape).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cbsnap_cli.errors import ExitCode


@dataclass(frozen=True)
class Answer:
    """What the CLI needs from one handler answer."""

    results: list[dict[str, Any]] = field(default_factory=list)
    status: int | None = None  # the HTTP status, for a webhook answer
    body: Any = None  # the decoded webhook body (or the whole answer for the other handlers)

    @property
    def failed(self) -> list[dict[str, Any]]:
        """The results that did not succeed (code other than 0)."""
        return [r for r in self.results if r.get("code") != 0]

    def exit_code(self) -> ExitCode:
        """0 when every disk succeeded and the webhook (if any) answered 2xx, else 1."""
        if self.status is not None and not 200 <= self.status < 300:
            return ExitCode.FAILED
        return ExitCode.FAILED if self.failed else ExitCode.OK

    def summary(self) -> str:
        """One line for stderr: what happened, in numbers."""
        ok = len(self.results) - len(self.failed)
        text = f"{ok} of {len(self.results)} disks succeeded"
        if self.status is None:
            return text
        if not self.results and isinstance(self.body, dict) and self.body.get("message"):
            text = str(self.body["message"])  # refused before any disk: say why
        return f"HTTP {self.status}: {text}"


def read_answer(answer: Any) -> Answer:
    """Find the per-disk results in any handler's answer."""
    if isinstance(answer, dict) and isinstance(answer.get("statusCode"), int):
        status: int = answer["statusCode"]
        try:
            body = json.loads(answer.get("body") or "null")
        except (TypeError, ValueError):
            body = answer.get("body")
        return Answer(_results(body), status, body)
    return Answer(_results(answer), None, answer)


def _results(payload: Any) -> list[dict[str, Any]]:
    if not isinstance(payload, dict):
        return []
    results = payload.get("results")
    if isinstance(results, list):
        return [r for r in results if isinstance(r, dict)]
    if "code" in payload and ("storageId" in payload or "snapshotId" in payload):
        return [payload]  # the seed's single-result shape (or a status answer)
    return []
