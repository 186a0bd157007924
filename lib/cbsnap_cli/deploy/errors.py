"""Deploy errors: a configuration problem (exit 2) or a failed cloud call (exit 1)."""

from __future__ import annotations


class ConfigError(Exception):
    """The configuration, the zip or the command line cannot be used; nothing was called."""


class CloudError(Exception):
    """An SCF API call failed: the action, Tencent's error code and message, and the RequestId."""

    def __init__(self, action: str, code: str, message: str, request_id: str | None) -> None:
        self.action = action
        self.code = code
        self.message = message
        self.request_id = request_id
        super().__init__(f"{action} failed: {code}: {message} (RequestId {request_id or 'none'})")
