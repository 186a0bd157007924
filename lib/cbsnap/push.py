"""TDMQ-CMQ topic pushes to the function URL: the token, the time budget, the answer's status.

No SCF trigger consumes TDMQ for CMQ; a topic subscription with ``Protocol=http`` POSTs each
message to an endpoint instead (docs/triggers.md, "CMQ topic push"). The endpoint is the
function URL with this path and the push token::

    POST /push/cmq?token=<CBSNAP_PUSH_TOKEN>

* **Authentication.** CMQ cannot sign a request, so the subscription's endpoint carries a
  secret token, compared in constant time with ``CBSNAP_PUSH_TOKEN`` (≥ 32 bytes). No token
  configured refuses every push; a wrong or missing token is a 401 before anything else,
  with no cloud call. (A 401 is not a 2xx, so CMQ pushes again by its retry policy: a
  misconfigured token is fixed without losing messages younger than a day.)
* **The answer.** Any 2xx acknowledges the message; anything else, or no answer within
  CMQ's push timeout (about 15 s), makes CMQ push it again. The push is acknowledged with 200
  unless some disk's work is unfinished (not attempted, or a transient failure such as a busy
  disk): then 503, and the redelivery carries the same ``msgId``, so the same key, and
  finishes the rest. A final failure (an invalid disk, say) is acknowledged: pushing again
  would only repeat it.
* **The budget.** The run is cut at :data:`PUSH_BUDGET_SECONDS` (or the function's own
  deadline, if sooner) so that the answer reaches CMQ before it gives up on the push. A
  request with more disks than fit in the budget (:func:`push_inline_limit`) is handed on in
  fan-out chunks (asynchronous self-invocations) and answered 202.
"""

from __future__ import annotations

import hmac

from cbsnap.scf import Clock, Deadline

PUSH_PATH = "/push/cmq"
TOKEN_PARAM = "token"  # noqa: S105 - the parameter's name, not a token
# CMQ's push timeout: "检测超时时间约为15秒" (about 15 s), cloud.tencent.com/document/product/1496/65109.
PUSH_TIMEOUT_SECONDS = 15.0
# Kept back for logging, delivering to the sinks and the answer's trip back through the function URL.
REPLY_MARGIN_SECONDS = 3.0
PUSH_BUDGET_SECONDS = PUSH_TIMEOUT_SECONDS - REPLY_MARGIN_SECONDS
ACKNOWLEDGED = 200
PUSH_AGAIN = 503


def token_problem(configured: str | None, query: dict[str, str | list[str]]) -> str | None:
    """None when the push carries the configured token, else why it is refused (no secret in it)."""
    if not configured:
        return "CMQ push is not configured (CBSNAP_PUSH_TOKEN is not set)"
    given = query.get(TOKEN_PARAM)
    if not isinstance(given, str) or not given:
        return f"send the push token as ?{TOKEN_PARAM}=… in the subscription's endpoint"
    # compare_digest on bytes: a token that is not ASCII is compared, not rejected with a TypeError
    if not hmac.compare_digest(given.encode("utf-8", "surrogatepass"), configured.encode("utf-8")):
        return "push token mismatch"
    return None


def push_deadline(function_deadline: Deadline, clock: Clock, budget: float = PUSH_BUDGET_SECONDS) -> Deadline:
    """The run's deadline for one push: the function's, or ``budget`` seconds, whichever comes first."""
    return Deadline.after(max(min(function_deadline.remaining(), budget), 0.0), clock)


HANDED_ON = 202
# The share of the budget one request may plan to spend creating at the API's pace: the
# rest covers resolution, the look-before-create and the answer.
_INLINE_SHARE = 0.5
_INLINE_WITHOUT_PACING = 100


def push_inline_limit(rate_limit: float, budget: float = PUSH_BUDGET_SECONDS) -> int:
    """How many disks one push may snapshot itself; above that it fans out and answers 202."""
    if rate_limit <= 0:
        return _INLINE_WITHOUT_PACING
    return max(1, int(budget * rate_limit * _INLINE_SHARE))


def push_status(unfinished: bool, *, handed_on: bool = False) -> int:
    """200 (acknowledged), 202 (acknowledged, handed on in chunks), or 503 when some disk's work
    is unfinished: CMQ then pushes again."""
    if unfinished:
        return PUSH_AGAIN
    return HANDED_ON if handed_on else ACKNOWLEDGED
