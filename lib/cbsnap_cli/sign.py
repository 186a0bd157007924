"""``cbsnap sign``: the webhook's two auth headers for a body or a query, or a ready curl command."""

from __future__ import annotations

import argparse
import os
import shlex
import time
from urllib.parse import parse_qsl, quote, urlencode

from cbsnap_cli.errors import ExitCode, UsageError
from cbsnap_cli.files import read_bytes, read_text

DESCRIPTION = """\
Sign a webhook call (docs/triggers.md, Authentication): print the X-Cbsnap-Timestamp and
X-Cbsnap-Signature headers, one per line, or with --curl a complete curl command. The signature
covers the exact body, or for a body-less call the query parameters. The secret is read from
an environment variable or a file, never from the command line (ps and shell history show it)."""


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``sign`` to the ``cbsnap`` parser."""
    parser = subparsers.add_parser(
        "sign",
        help="sign a webhook call: print its auth headers or a curl command",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--body", help="the exact request body to sign, e.g. a JSON request document")
    what.add_argument("--body-file", metavar="FILE", help="sign the exact bytes of this file as the body")
    parser.add_argument(
        "--query", help="query parameters of a body-less call, e.g. 'wait=50' or 'Action=CreateSnapshot&…'"
    )
    parser.add_argument(
        "--secret-env",
        default="CBSNAP_WEBHOOK_SECRET",
        metavar="NAME",
        help="environment variable holding the secret (default: CBSNAP_WEBHOOK_SECRET)",
    )
    parser.add_argument("--secret-file", metavar="FILE", help="read the secret from this file instead")
    parser.add_argument(
        "--timestamp", type=int, metavar="SECONDS", help="unix seconds to sign with (default: now)"
    )
    parser.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="send (and sign) an Idempotency-Key header: a retried call makes no second snapshot",
    )
    parser.add_argument("--curl", metavar="URL", help="print a ready curl command for this URL instead")
    parser.add_argument("--method", help="HTTP method for --curl (default: POST with a body, else GET)")
    parser.add_argument(
        "--content-type",
        help="Content-Type for --curl (default: JSON for a body starting with { or [, else form)",
    )
    parser.set_defaults(func=run)


def _secret(args: argparse.Namespace) -> str:
    if args.secret_file:
        secret = read_text(args.secret_file, "the secret file").strip()
        if not secret:
            raise UsageError(f"the secret file {args.secret_file} is empty")
        return secret
    secret = os.environ.get(args.secret_env, "")
    if not secret:
        raise UsageError(
            f"no webhook secret: {args.secret_env} is not set",
            f"export {args.secret_env} (from your CI's secret store) or pass --secret-file",
        )
    return secret


def _query(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        raise UsageError(
            f"--query {text!r} is not name=value pairs joined by &", "e.g. --query 'wait=50'"
        ) from None
    for name, value in pairs:
        if name in params:
            raise UsageError(f"query parameter {name!r} is given twice", "the webhook refuses repeats")
        params[name] = value
    return params


def run(args: argparse.Namespace) -> ExitCode:
    """Print the headers (or the curl command)."""
    from cbsnap.webauth import auth_headers, signing_payload

    if args.body_file is not None:
        body = read_bytes(args.body_file, "the body file")
    else:
        body = (args.body or "").encode("utf-8")
    params: dict[str, str] = {}
    if args.query:
        if body:
            raise UsageError(
                "give a body or a query, not both", "a call with a body signs the body; drop --query"
            )
        params = _query(args.query)
    now = float(args.timestamp) if args.timestamp is not None else time.time()
    key = args.idempotency_key
    if key is not None and not (1 <= len(key) <= 128 and all("\x21" <= c <= "\x7e" for c in key)):
        raise UsageError("--idempotency-key must be 1-128 printable ASCII characters", "drop the spaces")
    # With a key, the key is signed too and printed as a third header (after the two auth
    # headers, so scripts reading lines 1 and 2 keep working).
    headers = auth_headers(_secret(args), signing_payload(body, params), now, key=key)
    if not args.curl:
        for name, value in headers.items():
            print(f"{name}: {value}")
        return ExitCode.OK
    method = args.method or ("POST" if body else "GET")
    url = args.curl
    if params:  # what is sent is what was signed: the same sorted parameters
        url += ("&" if "?" in url else "?") + urlencode(sorted(params.items()), quote_via=quote)
    words = ["curl", "--fail-with-body", "-sS", "-X", method]
    if body:
        content_type = args.content_type or (
            "application/json"
            if body.lstrip().startswith((b"{", b"["))
            else "application/x-www-form-urlencoded"
        )
        words += ["-H", f"Content-Type: {content_type}"]
    for name, value in headers.items():
        words += ["-H", f"{name}: {value}"]
    if args.body_file is not None:
        words += ["--data-binary", f"@{args.body_file}"]
    elif body:
        words += ["--data-binary", body.decode("utf-8")]
    words.append(url)
    print(shlex.join(words))
    return ExitCode.OK
