"""Hypothesis strategies for the handler fuzz tests.

* arbitrary JSON (recursive: dicts, lists, strings, ints, floats, bools, None), weird
  Unicode (every plane and category), huge strings, deep nesting; *bad bytes*: lone
  surrogates (raw in text and as JSON escapes), ``NaN`` / ``±Infinity`` (as floats and as
  JSON tokens), Unicode digits where ASCII digits belong;
* request documents with a wrong type (or a wrong value) in every field, whose disk
  references all look like disk IDs but are not;
* every trigger envelope SCF delivers today (timer, CKafka, TDMQ through EventBridge
  alone and batched, API Gateway, the function URL, a TDMQ-CMQ push to the function URL)
  with every envelope field fuzzed, keys dropped, and JSON text cut short; and among the
  malformed shapes, the retired CMQ trigger's records (always refused, 9003).

Nothing here produces a valid disk ID (``disk-`` + 8 of ``[a-z0-9]``) unless asked to;
:func:`valid_disk_ids_in` finds any that slipped in, so a test can state exactly which
disks a CreateSnapshot call may name.
"""

from __future__ import annotations

import base64
import json
import re
import string
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from hypothesis import strategies as st

DISK_ALPHABET = string.ascii_lowercase + string.digits

# The request document's fields, and the envelope fields of every trigger: fuzzed
# dictionaries use them as keys often, so wrong values land where the parser looks.
DOCUMENT_FIELDS = (
    "storageId",
    "diskId",
    "disks",
    "snapshotName",
    "tags",
    "idempotencyKey",
    "replyTo",
    "correlation",
)
ENVELOPE_FIELDS = (
    "Type",
    "TriggerName",
    "Time",
    "Message",
    "Records",
    "CMQ",
    "Ckafka",
    "msgId",
    "msgBody",
    "topic",
    "partition",
    "offset",
    "specversion",
    "type",
    "data",
    "id",
    "httpMethod",
    "path",
    "body",
    "headers",
    "queryString",
    "isBase64Encoded",
    "requestContext",
    "EventList",
    "queryString",
    "token",
    "TopicOwner",
    "topicName",
)

# Disks of the emulator's packaged demo seed (tests/conftest.py's emulator uses it):
# well-formed IDs that must still never be snapshotted: no SnapshotAbility, another
# region, no such disk.
SEED_REFUSED = ("disk-r5n8c2wd", "disk-s8h3m6qa", "disk-zzzzzzzz", "disk-00000000")


def is_valid_disk_id(value: Any) -> bool:
    """The product's rule, restated independently: ``disk-`` + exactly 8 of ``[a-z0-9]``."""
    return (
        isinstance(value, str)
        and len(value) == 13
        and value.startswith("disk-")
        and all(c in DISK_ALPHABET for c in value[5:])
    )


def valid_disk_ids_in(value: Any) -> set[str]:
    """Every valid disk ID the input carries, where a handler could read one.

    A string that is exactly a valid ID; one quoted inside JSON text; a ``storageId=`` or
    ``diskId=`` parameter of form-encoded text; the same inside base64 text. Lookalikes
    (``"disk-g73hhs4o\\n"``, ``"xdisk-g73hhs4o"``) do not count: invalid data must not
    reach the API, so a test may demand no API call at all when this is empty.
    """
    found: set[str] = set()
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if is_valid_disk_id(item):
                found.add(item)
            found.update(_QUOTED.findall(item))
            found.update(_FORM_PARAM.findall(item))
            decoded = _unbase64(item)
            if decoded is not None:
                stack.append(decoded)
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple)):
            stack.extend(item)
    return found


_QUOTED = re.compile(r'"(disk-[a-z0-9]{8})"')
_FORM_PARAM = re.compile(r"(?:^|&)(?:storageId|diskId)=(disk-[a-z0-9]{8})(?=&|$)")


def _unbase64(text: str) -> str | None:
    if len(text) < 8 or len(text) % 4:
        return None
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


# -- scalars ------------------------------------------------------------------------------

# Every Unicode category but surrogates: control and format characters, private use,
# unassigned and non-characters, combining marks, astral planes. Valid text: the mixed-disk
# property snapshots with names made of these.
weird_chars = st.characters(exclude_categories=("Cs",))
# Lone surrogates: JSON text carries them ("\ud800"), UTF-8 cannot. Invalid data only.
surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
# What str.isdigit() accepts but int() refuses, or reads as another number: never an offset.
UNICODE_DIGITS = ("\u00b2", "\u0663", "\uff11\uff12", "\u07c0", "1\u00b2", "\u2074")
NON_FINITE = (float("nan"), float("inf"), float("-inf"))

SPECIAL_STRINGS = (
    "",
    " ",
    "\x00",
    "\t\n\r",
    "\u200b",  # zero-width space
    "\u202e",  # right-to-left override
    "\ufeff",  # byte-order mark
    "\ufffe",
    "\uffff",
    "\U0010ffff",
    "\U0001f4be",
    "e\u0301",  # combining acute
    "null",
    "true",
    "[]",
    "{}",
    "NaN",
    "-0",
    "1e309",
    "\\",
    '"',
    "\ud800",  # lone surrogates, high and low, alone and around text
    "\udfff",
    "a\udc80b",
    "\ud83d",  # half of an emoji's pair
    "\udfff\ud800",  # a pair in the wrong order: two lone surrogates
    *UNICODE_DIGITS,
    "'; DROP TABLE snapshots; --",
    "${jndi:ldap://x}",
    "%s%n",
    "../../etc/passwd",
    "disk-",
    "snap-",
    "Timer",
    "CreateSnapshot",
    "connector:tdmq",
    *DOCUMENT_FIELDS,
)


def huge_strings() -> st.SearchStrategy[str]:
    """Strings from 1 KB to 300 KB (past the webhook's 256 KiB body limit)."""
    return st.builds(
        lambda unit, n: unit * n,
        st.sampled_from(["x", "é", "\U0001f600", "disk-", "\u200b", '{"a":', "\x00"]),
        st.sampled_from([1_000, 20_000, 300_000 // 5]),
    )


texts = st.one_of(
    st.text(weird_chars, max_size=24),
    st.sampled_from(SPECIAL_STRINGS),
    st.text(st.characters(codec="ascii"), max_size=24),
    st.text(st.one_of(weird_chars, surrogates), min_size=1, max_size=12),
)
big_texts = st.one_of(texts, huge_strings())
integers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63, 2**64, -(2**63) - 1]),
    st.builds(pow, st.just(10), st.just(4000)),  # 4001 digits: just under Python's int/str cap
)
floats = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(NON_FINITE))
scalars = st.one_of(st.none(), st.booleans(), integers, floats, big_texts)
keys = st.one_of(st.sampled_from(DOCUMENT_FIELDS + ENVELOPE_FIELDS), texts)


def json_values(max_leaves: int = 10) -> st.SearchStrategy[Any]:
    """Arbitrary JSON values (as Python objects), nested lists and dicts included."""
    return st.recursive(
        scalars,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.dictionaries(keys, children, max_size=4),
        ),
        max_leaves=max_leaves,
    )


def nest(leaf: Any, depth: int, kind: str) -> Any:
    """``leaf`` wrapped ``depth`` times in lists or single-key dicts (built without recursion)."""
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "list" else {"a": value}
    return value


def nested_text(depth: int, kind: str) -> str:
    """JSON text nested ``depth`` deep, built as text (a Python object that deep could not be dumped)."""
    if kind == "list":
        return "[" * depth + "1" + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


# Objects no deeper than an SCF event can be: the runtime json.loads the event, which
# fails past Python's recursion limit (1000) anyway.
deep_values = st.builds(nest, scalars, st.sampled_from([20, 100, 400]), st.sampled_from(["list", "dict"]))
# Around Python's recursion limit (1000) is where decoding and re-encoding disagree.
_DEPTHS = st.one_of(st.sampled_from([50, 500, 5_000, 100_000]), st.integers(min_value=850, max_value=1_000))
_KINDS = st.sampled_from(["list", "dict"])
deep_texts = st.one_of(
    st.builds(nested_text, _DEPTHS, _KINDS),
    # a deep value inside an otherwise plausible document
    st.builds(
        lambda field, depth, kind: f'{{"storageId": "disk-BAD", "{field}": {nested_text(depth, kind)}}}',
        st.sampled_from(DOCUMENT_FIELDS[1:]),
        _DEPTHS,
        _KINDS,
    ),
)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, picked with the given weights (``one_of`` has no weights)."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.sampled_from(table).flatmap(lambda strategy: strategy)


anything = weighted((6, json_values()), (1, deep_values))


@st.composite
def partial(draw: Callable[..., Any], strategy: st.SearchStrategy[Any]) -> Any:
    """A value of ``strategy`` with some of its keys dropped, when it is a dict."""
    value = draw(strategy)
    if isinstance(value, dict) and value:
        drop = draw(st.sets(st.sampled_from(sorted(value, key=str))))
        value = {k: v for k, v in value.items() if k not in drop}
    return value


# -- disk IDs -----------------------------------------------------------------------------


def _valid_disk_id() -> st.SearchStrategy[str]:
    return st.text(st.sampled_from(DISK_ALPHABET), min_size=8, max_size=8).map(lambda s: "disk-" + s)


def _mutate(disk_id: str, position: int, char: str) -> str:
    chars = list(disk_id)
    chars[position % len(chars)] = char
    return "".join(chars)


LOOKALIKES = (
    "DISK-G73HHS4O",
    "Disk-g73hhs4o",
    "disk_g73hhs4o",
    "disk g73hhs4o",
    "disk--g73hhs4",
    "dsk-g73hhs4o",
    "disk-g73hhs4o\n",
    "\ndisk-g73hhs4o",
    " disk-g73hhs4o",
    "disk-g73hhs4o ",
    "disk-g73hhs4o\x00",
    "disk-g73h\u200bhs4o",
    "disk-g73hhs4\u0585",  # Armenian o
    "disk-g73hhs4\u043e",  # Cyrillic o
    "\uff44isk-g73hhs4o",  # fullwidth d
    "disk-g73hhs\u0664o",  # Arabic-Indic digit four
    "disk-g73hhs\u2074o",  # superscript four
    "disk-g73hhs4o\u0301",  # trailing combining mark
    "disk-g\u0131\u0131hhs4o",  # dotless i
    "disk-g73hhs4o/../disk-q7m3x9ab",
    "disk-g73hhs4o,disk-q7m3x9ab",
    "ins-g73hhs4o",
    "snap-g73hhs4o",
    "disk-",
    "disk",
    "",
)

invalid_disk_ids: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(LOOKALIKES),
    # wrong length
    st.text(st.sampled_from(DISK_ALPHABET), max_size=20)
    .filter(lambda s: len(s) != 8)
    .map(lambda s: "disk-" + s),
    # one character replaced by anything outside [a-z0-9] (upper case, punctuation, Unicode)
    st.builds(
        _mutate,
        _valid_disk_id(),
        st.integers(min_value=0, max_value=12),
        weird_chars.filter(lambda c: c not in DISK_ALPHABET),
    ),
    # something around a valid ID
    st.builds(lambda a, d, b: a + d + b, texts, _valid_disk_id(), texts).filter(lambda s: len(s) != 13),
    st.text(weird_chars, min_size=13, max_size=13),
).filter(lambda s: not is_valid_disk_id(s))

# A disk reference: a wrong ID, or a wrong type altogether.
invalid_disk_refs = weighted((3, invalid_disk_ids), (1, anything))


# -- request documents ----------------------------------------------------------------------

snapshot_names = st.one_of(
    st.text(weird_chars, min_size=1, max_size=60),
    st.sampled_from(["", "n" * 61, "n" * 10_000]),
    anything,
)
tag_maps = st.one_of(
    st.dictionaries(
        st.text(weird_chars, min_size=1, max_size=10), st.text(weird_chars, max_size=10), max_size=3
    ),
    st.sampled_from(
        [
            {"qcloud:x": "v"},
            {"cbsnap:key": "forged"},
            {"Project": "p"},
            {"tencent-thing": "v"},
            {"k" * 128: "v"},
            {"k": "v" * 256},
            {"": "v"},
            {f"k{i}": "v" for i in range(41)},
            {"k": None},
            {"k": 1},
        ]
    ),
    anything,
)
idempotency_keys = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128),
    st.sampled_from(["", "has space", "k" * 129, "ключ", "tab\tkey"]),
    anything,
)
reply_tos = st.one_of(
    st.sampled_from(
        [
            {"queue": "cbsnap-results"},
            {"topic": "cbsnap-events"},
            {"queue": "no-such-queue"},
            {"queue": "cbsnap-results", "topic": "cbsnap-events"},
            {},
            {"queue": "9starts-with-digit"},
            {"queue": "q" * 65},
            {"queue": "cbsnap-results", "extra": 1},
        ]
    ),
    anything,
)
correlations = st.one_of(
    st.dictionaries(texts, json_values(max_leaves=4), max_size=3),
    st.just({"big": "x" * 3000}),
    st.builds(lambda v: {"deep": v}, deep_values),
    # what the log and a JSON answer cannot carry, at the top and nested
    st.builds(lambda f: {"score": f}, st.sampled_from(NON_FINITE)),
    st.builds(lambda t: {"run": {"id": [t]}}, st.text(surrogates, min_size=1, max_size=3)),
    st.builds(lambda t: {t: "v"}, st.text(surrogates, min_size=1, max_size=3)),
    anything,
)


def disk_entries(refs: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """One element of ``disks``: a reference, or an object form with fuzzed fields."""
    objects = st.fixed_dictionaries(
        {},
        optional={
            "storageId": refs,
            "diskId": refs,
            "snapshotName": snapshot_names,
            "unknown": anything,
        },
    )
    return st.one_of(refs, objects, st.dictionaries(keys, anything, max_size=3))


def request_documents(refs: st.SearchStrategy[Any] = invalid_disk_refs) -> st.SearchStrategy[dict[str, Any]]:
    """Request-shaped dicts: every field may be absent, right, wrong in value, or wrong in type."""
    return st.fixed_dictionaries(
        {},
        optional={
            "storageId": refs,
            "diskId": refs,
            "disks": st.one_of(st.lists(disk_entries(refs), max_size=6), anything),
            "snapshotName": snapshot_names,
            "tags": tag_maps,
            "idempotencyKey": idempotency_keys,
            "replyTo": reply_tos,
            "correlation": correlations,
            "storageIds": anything,  # a near-miss of a real field name
            "Disks": anything,
        },
    )


def dumps_or_null(value: Any, ascii_only: bool) -> str:
    try:
        return json.dumps(value, ensure_ascii=ascii_only)
    except (ValueError, RecursionError):  # an int past the digit cap, a too-deep value
        return "null"


def _cut(text: str, fraction: float) -> str:
    return text[: int(len(text) * fraction)]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8", "surrogatepass")).decode("ascii")


def document_texts(docs: st.SearchStrategy[Any]) -> st.SearchStrategy[str]:
    """A document as the text a trigger carries: JSON, cut short, base64, or junk."""
    dumped = st.builds(dumps_or_null, docs, st.booleans())
    return weighted(
        (6, dumped),
        (2, st.builds(_cut, dumped, st.floats(min_value=0.0, max_value=0.999))),
        (1, dumped.map(_b64)),
        (1, big_texts),
        (1, deep_texts),
    )


# Documents whose disks are all invalid, or which are not documents at all.
invalid_documents = weighted((4, request_documents()), (1, anything))


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Usually the plausible value, sometimes anything."""
    return weighted((4, strategy), (1, anything))


# -- the timer ------------------------------------------------------------------------------


def timer_events(documents: st.SearchStrategy[Any] = invalid_documents) -> st.SearchStrategy[Any]:
    """Timer-shaped events (fields fuzzed or missing), arbitrary JSON, or cut JSON text."""
    shaped = st.fixed_dictionaries(
        {
            "Type": _maybe(st.sampled_from(["Timer", "timer", "TIMER", "Cos", "", "Timer "])),
            "TriggerName": _maybe(texts),
            "Time": _maybe(st.sampled_from(["2026-11-28T02:00:00Z", "", "yesterday"]) | texts),
            "Message": weighted((4, document_texts(documents)), (1, documents), (1, anything)),
        },
        optional={"Extra": anything},
    )
    return weighted((6, shaped), (2, partial(shaped)), (1, anything), (1, document_texts(documents)))


# -- the queue triggers ---------------------------------------------------------------------

message_ids = st.one_of(
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=128),
    st.integers(min_value=-(2**40), max_value=2**70),
    st.sampled_from(["", " ", "id with spaces", "x" * 129, "\u200b", "ид", "m\ud800", *UNICODE_DIGITS]),
    anything,
)


def message_bodies(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return weighted((4, document_texts(documents)), (1, documents), (1, anything))


# The keys a retired CMQ trigger record may carry: its spelling's case is not trusted either
# way, so each is refused by name ("a CMQ trigger record"); "CMQ " is just an unknown record.
CMQ_RECORD_KEYS = ("CMQ", "cmq", "Cmq")


def cmq_records(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The retired CMQ trigger's record, fields fuzzed: SCF no longer delivers it, cbsnap must
    still refuse it (9003 naming why), whatever it holds."""
    body = st.fixed_dictionaries(
        {"msgId": message_ids, "msgBody": message_bodies(documents)},
        optional={
            "type": _maybe(st.sampled_from(["topic", "queue"])),
            "topicOwner": _maybe(st.integers(min_value=0, max_value=2**40)),
            "topicName": _maybe(texts),
            "subscriptionName": _maybe(texts),
            "publishTime": _maybe(texts),
            "requestId": _maybe(texts),
            "msgTag": _maybe(texts),
        },
    )
    key = st.sampled_from([*CMQ_RECORD_KEYS, "CMQ "])
    return st.builds(lambda k, b: {k: b}, key, _maybe(weighted((3, body), (1, partial(body)))))


def ckafka_records(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    offsets = st.one_of(
        st.integers(min_value=-5, max_value=2**63),
        st.sampled_from(["0", "12", "-1", "1e3", "9" * 25, *UNICODE_DIGITS]),
    )
    body = st.fixed_dictionaries(
        {
            "topic": _maybe(texts),
            "partition": _maybe(offsets),
            "offset": _maybe(offsets),
            "msgBody": message_bodies(documents),
        },
        optional={"msgKey": _maybe(texts)},
    )
    key = st.sampled_from(["Ckafka", "ckafka", "CKafka"])
    return st.builds(lambda k, b: {k: b}, key, _maybe(weighted((3, body), (1, partial(body)))))


def tdmq_events(documents: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    data = st.fixed_dictionaries(
        {"msgId": message_ids, "msgBody": message_bodies(documents)},
        optional={
            "topic": _maybe(texts),
            "tags": _maybe(texts),
            "subscriptionName": _maybe(texts),
            "partitions": _maybe(texts),
        },
    )
    event = st.fixed_dictionaries(
        {
            "specversion": _maybe(st.just("0")),
            "type": _maybe(st.sampled_from(["connector:tdmq", "connector:ckafka", "connector:"])),
            "data": _maybe(weighted((3, data), (1, partial(data)))),
        },
        optional={
            "id": _maybe(texts),
            "source": _maybe(st.just("tdmq.cloud.tencent")),
            "region": _maybe(st.just("ap-guangzhou")),
        },
    )
    return weighted((3, event), (1, partial(event)))


def eventbridge_batches(documents: st.SearchStrategy[Any] = invalid_documents) -> st.SearchStrategy[Any]:
    """EventBridge's batched delivery: ``{"EventList": [...]}`` of CloudEvents, some malformed."""
    item = weighted((4, tdmq_events(documents)), (1, anything))
    return st.fixed_dictionaries(
        {"EventList": weighted((5, st.lists(item, max_size=4)), (1, anything))},
        optional={"Extra": anything},
    )


def is_cmq_record(record: Any) -> bool:
    """Whether the product reads ``record`` as the retired CMQ trigger's (and no CKafka one)."""
    if not isinstance(record, dict):
        return False
    kinds = {str(k).lower(): v for k, v in record.items()}
    return "cmq" in kinds and not isinstance(kinds.get("ckafka"), dict)


def queue_events(documents: st.SearchStrategy[Any] = invalid_documents) -> st.SearchStrategy[Any]:
    """CKafka batches (records mixed, some malformed, retired CMQ records among them), TDMQ
    CloudEvents alone and batched, or junk."""
    record = weighted((3, ckafka_records(documents)), (1, cmq_records(documents)), (1, anything))
    batches = st.fixed_dictionaries(
        {"Records": weighted((5, st.lists(record, max_size=4)), (1, anything))},
        optional={"Extra": anything},
    )
    return weighted(
        (5, batches),
        (2, tdmq_events(documents)),
        (2, eventbridge_batches(documents)),
        (1, anything),
        (1, document_texts(documents)),
    )


# -- API Gateway ------------------------------------------------------------------------------

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "post", "get", "")
PATHS = (
    "/snapshots",
    "/snapshots/",
    "snapshots",
    "//snapshots//",
    "/release/snapshots",
    "/v2/index.php",
    "/release/v2/index.php",
    "/snapshots/snap-abcdefgh",
    "/snapshots/snap-ABCDEFGH",
    "/snapshots/disk-g73hhs4o",
    "/snapshots/a/b",
    "/",
    "",
    "/v2/index.php/../snapshots",
    "/push/cmq",
    "/release/push/cmq",
    "/push/cmq/",
)


# (method, path) pairs that reach a route, so the fuzzed payload reaches validation.
ROUTES = (
    ("POST", "/snapshots"),
    ("POST", "/release/snapshots"),
    ("GET", "/v2/index.php"),
    ("POST", "/v2/index.php"),
    ("GET", "/snapshots/snap-abcdefgh"),
)


def form_encode(params: list[tuple[str, Any]]) -> str:
    pairs = [(k, v if isinstance(v, str) else dumps_or_null(v, True)) for k, v in params]
    return urlencode(pairs, encoding="utf-8", errors="surrogatepass")  # lone surrogates as bytes


def v2_params(refs: st.SearchStrategy[Any]) -> st.SearchStrategy[list[tuple[str, Any]]]:
    """The seed endpoint's parameters: Action, storageId/diskId, snapshotName, junk, repeats."""
    pair = st.one_of(
        st.tuples(st.just("Action"), _maybe(st.sampled_from(["CreateSnapshot", "DeleteSnapshot", ""]))),
        st.tuples(st.sampled_from(["storageId", "diskId"]), refs),
        st.tuples(st.just("snapshotName"), snapshot_names),
        st.tuples(st.sampled_from(["Region", "Nonce", "Signature", "Timestamp"]), texts),
        st.tuples(texts, anything),
    )
    return st.lists(pair, max_size=6)


def _query_dict(params: list[tuple[str, Any]]) -> dict[str, Any]:
    query: dict[str, Any] = {}
    for key, value in params:
        if key in query:  # a repeated parameter arrives as a list
            previous = query[key]
            query[key] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            query[key] = value
    return query


def webhook_bodies(documents: st.SearchStrategy[Any], refs: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return weighted(
        (4, document_texts(documents)),
        (2, v2_params(refs).map(form_encode)),
        (1, st.none()),
        (1, anything),
    )


def webhook_events(
    documents: st.SearchStrategy[Any] = invalid_documents, refs: st.SearchStrategy[Any] = invalid_disk_refs
) -> st.SearchStrategy[Any]:
    """API Gateway events: method, path, query, headers, body, base64 flag and context fuzzed."""
    query = st.one_of(
        v2_params(refs).map(_query_dict), st.dictionaries(texts, anything, max_size=3), anything
    )
    headers = st.one_of(
        st.dictionaries(
            st.one_of(
                st.sampled_from(
                    [
                        "content-type",
                        "Content-Type",
                        "idempotency-key",
                        "Idempotency-Key",
                        "x-cbsnap-timestamp",
                        "X-Cbsnap-Signature",
                    ]
                ),
                texts,
            ),
            st.one_of(texts, st.lists(texts, max_size=2), anything),
            max_size=4,
        ),
        anything,
    )
    context = st.fixed_dictionaries(
        {},
        optional={
            "requestId": _maybe(st.uuids().map(str)),
            "stage": _maybe(st.sampled_from(["release", "test", ""])),
            "httpMethod": _maybe(st.sampled_from(METHODS)),
            "path": _maybe(st.sampled_from(PATHS)),
        },
    )
    shaped = st.fixed_dictionaries(
        {
            "route": weighted(
                (2, st.sampled_from(ROUTES)),
                (1, st.tuples(_maybe(st.sampled_from(METHODS)), _maybe(st.sampled_from(PATHS)))),
                (1, st.tuples(st.just("GET"), texts.map(lambda t: "/snapshots/" + t))),
            ),
            "headers": headers,
            "body": webhook_bodies(documents, refs),
        },
        optional={
            "queryString": query,
            "queryStringParameters": query,
            "isBase64Encoded": _maybe(st.booleans()),
            "requestContext": _maybe(context),
        },
    )
    shaped = shaped.map(_with_route)
    return weighted(
        (6, shaped),
        (2, shaped.map(_base64_body)),
        (2, shaped.map(as_function_url)),
        (2, partial(shaped)),
        (1, anything),
    )


# The keys API Gateway sends and the function URL does not (cloud.tencent.com/document/product/583/96099).
_GATEWAY_ONLY = (
    "requestContext",
    "isBase64Encoded",
    "headerParameters",
    "pathParameters",
    "queryStringParameters",
)


def as_function_url(event: dict[str, Any]) -> dict[str, Any]:
    """The same request as the function URL delivers it: no requestContext, no base64 flag."""
    return {k: v for k, v in event.items() if k not in _GATEWAY_ONLY}


# -- TDMQ-CMQ topic pushes to the function URL ------------------------------------------------


def notify_texts(documents: st.SearchStrategy[Any] = invalid_documents) -> st.SearchStrategy[str]:
    """CMQ's JSON notify body with fuzzed fields, as text (sometimes cut short, or junk)."""
    notify = st.fixed_dictionaries(
        {
            "TopicOwner": _maybe(st.integers(min_value=0, max_value=2**40)),
            "topicName": _maybe(texts),
            "subscriptionName": _maybe(texts),
            "msgId": message_ids,
            "msgBody": message_bodies(documents),
            "publishTime": _maybe(st.integers(min_value=0, max_value=2**40)),
        }
    )
    dumped = st.builds(dumps_or_null, weighted((3, notify), (1, partial(notify))), st.booleans())
    return weighted((6, dumped), (1, st.builds(_cut, dumped, st.just(0.5))), (1, big_texts))


def _push(body: str, headers: dict[str, Any], token: Any, query: Any, method: str) -> dict[str, Any]:
    if query is None:
        query = {"token": token}
    return {"body": body, "headers": headers, "httpMethod": method, "path": "/push/cmq", "queryString": query}


def cmq_pushes(token: str, documents: st.SearchStrategy[Any] = invalid_documents) -> st.SearchStrategy[Any]:
    """A push to the function URL: the right token (so the body is read) or a wrong one, the
    JSON notify or the SIMPLIFIED body (the document, its id in a header), headers fuzzed."""
    cmq_headers = st.fixed_dictionaries(
        {"content-type": st.just("text/plain"), "user-agent": st.just("Qcloud Notification Service Agent")},
        optional={"x-cmq-message-id": message_ids, "x-cmq-request-id": texts, "x-cmq-message-tag": texts},
    )
    return st.builds(
        _push,
        body=weighted((3, notify_texts(documents)), (2, document_texts(documents))),
        headers=cmq_headers,
        token=weighted((6, st.just(token)), (1, texts), (1, st.just(token + "\ud800"))),
        query=weighted((8, st.none()), (1, st.just({})), (1, anything)),
        method=weighted((8, st.just("POST")), (1, st.sampled_from(METHODS))),
    )


def index_events(token: str) -> st.SearchStrategy[Any]:
    """Anything the deployed entry point may be handed: every shape above, and junk."""
    return weighted(
        (2, timer_events()),
        (3, queue_events()),
        (2, webhook_events()),
        (2, cmq_pushes(token)),
        (1, request_documents().map(lambda d: {"cbsnapRecheck": d})),
        (1, request_documents()),
        (1, anything),
    )


def _with_route(event: dict[str, Any]) -> dict[str, Any]:
    method, path = event.pop("route")
    return {"httpMethod": method, "path": path, **event}


def _base64_body(event: dict[str, Any]) -> dict[str, Any]:
    """The same event with its (string) body base64-encoded, as API Gateway does for binary bodies."""
    body = event.get("body")
    if isinstance(body, str):
        return {**event, "body": _b64(body), "isBase64Encoded": True}
    return event


# -- valid and invalid mixed ----------------------------------------------------------------

# Placeholders for the test's fresh disks: the test swaps in disks it added for the example,
# so the per-disk snapshot history (and with it the look-before-create paging) stays short.
SLOTS = 5


def slot(index: int) -> str:
    """The placeholder for the test's ``index``-th fresh disk."""
    return f"@slot{index}"


@st.composite
def mixed_disk_lists(draw: Callable[..., Any]) -> tuple[list[Any], list[str], int, set[str]]:
    """``disks`` mixing valid disks (strings or objects, repeats allowed) and invalid entries.

    Valid disks are :func:`slot` placeholders. Returns (entries, the valid slots named,
    the number of invalid entries, the well-formed but unusable IDs named). Those IDs
    (no SnapshotAbility, another region, no such disk) must get a failure and no
    CreateSnapshot call; repeats of one are answered once, as any repeated disk is.
    """
    entries: list[Any] = []
    valid: list[str] = []
    refused: set[str] = set()
    invalid = 0
    slots = st.integers(min_value=0, max_value=SLOTS - 1).map(slot)
    for kind in draw(st.lists(st.sampled_from(["valid", "invalid", "refused"]), min_size=1, max_size=10)):
        if kind == "valid":
            disk = draw(slots)
            form = draw(st.sampled_from(["string", "storageId", "diskId", "named"]))
            if form == "string":
                entries.append(disk)
            elif form == "named":
                name = draw(st.text(weird_chars, min_size=1, max_size=60))
                entries.append({"storageId": disk, "snapshotName": name})
            else:
                entries.append({form: disk})
            valid.append(disk)
        elif kind == "refused":
            disk = draw(st.sampled_from(SEED_REFUSED))
            entries.append(disk)
            refused.add(disk)
        else:
            entries.append(
                draw(
                    st.one_of(
                        invalid_disk_ids,
                        st.builds(lambda d: {"storageId": d}, invalid_disk_ids),
                        # a valid disk in a broken object: the entry is invalid as a whole
                        st.builds(lambda d: {"storageId": d, "snapshotName": "n" * 61}, slots),
                        st.builds(lambda d: {"storageId": d, "bogus": 1}, slots),
                        st.builds(lambda d: {"diskId": d, "snapshotName": 7}, slots),
                        st.sampled_from([None, 1, 1.5, True, [], {}, ["disk-g73hhs4o"]]),
                    )
                )
            )
            invalid += 1
    return entries, valid, invalid, refused


def materialise(value: Any, disks: list[str]) -> Any:
    """``value`` with every :func:`slot` placeholder replaced by the real disk ID."""
    if isinstance(value, str) and value.startswith("@slot"):
        return disks[int(value[5:])]
    if isinstance(value, list):
        return [materialise(v, disks) for v in value]
    if isinstance(value, dict):
        return {k: materialise(v, disks) for k, v in value.items()}
    return value
