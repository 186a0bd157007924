"""Making the planned changes, in order, waiting for the function to be Active where the API requires it."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .errors import CloudError
from .model import FunctionSpec
from .planner import Change
from .scf_api import ScfApi

# After these the function is Creating/Updating; SCF refuses the next change until it is Active again.
_LEAVES_FUNCTION_BUSY = ("CreateFunction", "UpdateFunctionCode", "UpdateFunctionConfiguration")


class DeployFailed(Exception):
    """A call failed part-way: the cloud error and the changes already made."""

    def __init__(self, error: CloudError, done: list[Change]) -> None:
        super().__init__(str(error))
        self.error = error
        self.done = done


def execute(
    api: ScfApi,
    function: FunctionSpec,
    changes: Sequence[Change],
    *,
    function_exists: bool,
    report: Callable[[Change], None] = lambda change: None,
) -> list[Change]:
    """Make ``changes``; return them, or raise :class:`DeployFailed` naming those already made."""
    done: list[Change] = []
    try:
        if function_exists and changes:
            api.wait_active(function.name, function.namespace)  # someone else's update may be running
        for change in changes:
            api.call(change.action, **change.params)
            done.append(change)
            report(change)
            if change.action in _LEAVES_FUNCTION_BUSY:
                api.wait_active(function.name, function.namespace)
    except CloudError as exc:
        raise DeployFailed(exc, done) from exc
    return done
