"""The public :class:`Emulator` facade: lifecycle, seeding, inspection and control."""

from __future__ import annotations

import copy
import re
import threading
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from . import ids, scf_facade
from .admin import AdminApi
from .auth import DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY, Credential
from .clock import StateClock, parse_datetime, parse_iso8601
from .errors import ApiError
from .faults import Fault
from .gateway import Gateway, Runtime, Settings
from .params import validate_tag
from .ratelimit import check_scope
from .resources import DISK_FIELDS, DISK_STATES, DISK_TYPES, DISK_USAGES, SNAPSHOT_STATES
from .scf_runner import LocalHandler, ScfRunner
from .seed import apply_seed, seed_credentials, seed_settings
from .server import EmulatorHTTPServer
from .tat_state import Outcome

_REGION = re.compile(r"^[a-z]{2,}-[a-z0-9]+(-[a-z0-9]+)*$")
_QUEUE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
# Disk states that imply an instance; a disk added in one of them without instance_id gets a fresh one.
_ATTACHED_STATES = ("ATTACHED", "ATTACHING", "DETACHING")

TimeLike = float | int | str | datetime


def _epoch(value: TimeLike, what: str) -> float:
    """Epoch seconds from a number, ``YYYY-MM-DD HH:MM:SS`` (Beijing time, as the API writes it),
    ISO-8601 with offset, or aware datetime."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"{what} must be timezone-aware")
        return value.timestamp()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return parse_datetime(value)
        except ValueError:
            try:
                return parse_iso8601(value)
            except ValueError:
                pass
    raise ValueError(
        f"{what} {value!r} is neither epoch seconds, 'YYYY-MM-DD HH:MM:SS' nor ISO-8601 with offset"
    )


def _tags(tags: Any, what: str) -> list[dict[str, str]]:
    """Tags given as [{"Key","Value"}] or a {key: value} dict."""
    if tags is None:
        return []
    items = [{"Key": k, "Value": v} for k, v in tags.items()] if isinstance(tags, dict) else tags
    try:
        result = [validate_tag(dict(t), f"{what}.{i}") for i, t in enumerate(items)]
        if len({t["Key"] for t in result}) != len(result):
            raise ValueError("tag keys must be unique")
        return result
    except (ApiError, TypeError, ValueError) as exc:
        raise ValueError(f"bad tags for {what}: {exc}") from exc


class Emulator:
    """A local Tencent Cloud CBS + TDMQ CMQ + Tag + TAT API that the official Python SDK can talk to.

    Parameters
    ----------
    seed:
        Initial state (see :func:`cbsnap_emulator.load_seed`); its ``settings`` apply unless the
        corresponding argument is given.
    host, port:
        Where :meth:`start` listens; port 0 picks a free one.
    creation_seconds:
        State-clock seconds a snapshot spends in CREATING (default 3.0).
    rate_limit:
        Requests per second per action (token bucket, burst = limit); 0 disables (default 20.0).
    rate_scope:
        ``"action"`` (one bucket per action for the account, the default) or ``"region"`` (one per
        region and action).
    copy_seconds:
        State-clock seconds a cross-region copy takes: half COPYING_FROM_REMOTE, half CHECKING_COPIED
        (default 6.0).
    command_seconds:
        State-clock seconds a TAT command runs unless its scripted outcome says otherwise (default 1.0).
    quota:
        Snapshots per disk (default 64).
    latency:
        Seconds every API call waits before being handled (default 0).
    rng_seed:
        Seed for ids, message ids and fault probabilities; set it for reproducible runs.

    Example
    -------
    >>> with Emulator(rng_seed=1) as emu:                       # doctest: +SKIP
    ...     disk = emu.add_disk(tags={"backup": "nightly"})
    ...     client = CbsClient(Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), "ap-guangzhou",
    ...                        ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=emu.endpoint)))
    """

    def __init__(
        self,
        seed: dict[str, Any] | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        creation_seconds: float | None = None,
        rate_limit: float | None = None,
        quota: int | None = None,
        latency: float | None = None,
        rng_seed: int | None = None,
        scf_transition_seconds: float = 1.0,
        rate_scope: str | None = None,
        copy_seconds: float | None = None,
        command_seconds: float | None = None,
    ) -> None:
        self._seed = copy.deepcopy(seed) if seed is not None else None
        from_seed = seed_settings(self._seed)
        self._settings = Settings(
            creation_seconds=_first(creation_seconds, from_seed.get("creationSeconds"), 3.0),
            rate_limit=_first(rate_limit, from_seed.get("rateLimit"), 20.0),
            quota=int(_first(quota, from_seed.get("quota"), 64)),
            latency=_first(latency, from_seed.get("latency"), 0.0),
            scf_transition_seconds=scf_transition_seconds,
            copy_seconds=_first(copy_seconds, from_seed.get("copySeconds"), 6.0),
            command_seconds=_first(command_seconds, from_seed.get("commandSeconds"), 1.0),
            rate_scope=check_scope(_first(rate_scope, from_seed.get("rateScope"), "action")),
        )
        timings = (
            self._settings.creation_seconds,
            self._settings.copy_seconds,
            self._settings.command_seconds,
        )
        if min(timings) < 0 or self._settings.rate_limit < 0 or self._settings.latency < 0:
            raise ValueError(
                "creation_seconds, copy_seconds, command_seconds, rate_limit and latency must be >= 0"
            )
        if self._settings.quota < 0:
            raise ValueError("quota must be >= 0")
        self._rng_seed = rng_seed
        self._host = host
        self._port = port
        self._clock = StateClock()
        self._scf_runner = ScfRunner(
            endpoint=lambda: self.url if self._server is not None else None,
            credential=lambda: (DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY),
        )
        self._gateway = Gateway(self._fresh_runtime(), self._clock)
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._apply_seed()

    def _fresh_runtime(self) -> Runtime:
        credentials = [Credential(DEFAULT_SECRET_ID, DEFAULT_SECRET_KEY), *seed_credentials(self._seed)]
        runtime = Gateway.new_runtime(self._settings, self._rng_seed, credentials)
        runtime.state.scf.runner = self._scf_runner
        return runtime

    def _apply_seed(self) -> None:
        if self._seed is not None:
            apply_seed(self, self._seed)

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> Emulator:
        """Serve HTTP in a daemon thread (no-op if already serving). Returns self."""
        if self._server is not None:
            return self
        server = EmulatorHTTPServer((self._host, self._port), self._gateway.handle, AdminApi(self).handle)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="cbsnap-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close open connections (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_all()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def endpoint(self) -> str:
        """``host:port`` for ``HttpProfile(endpoint=..., protocol="http")``; only while serving."""
        if self._server is None:
            raise RuntimeError("the emulator is not serving; call start() first")
        host, port = self._server.server_address[:2]
        host = str(host)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def url(self) -> str:
        """``http://host:port``."""
        return "http://" + self.endpoint

    # -- resources -------------------------------------------------------------------------------
    def add_disk(
        self,
        disk_id: str | None = None,
        *,
        region: str = "ap-guangzhou",
        zone: str | None = None,
        instance_id: str | None = None,
        tags: list[dict[str, str]] | dict[str, str] | None = None,
        snapshot_ability: bool = True,
        disk_state: str = "ATTACHED",
        disk_type: str = "CLOUD_PREMIUM",
        disk_usage: str = "DATA_DISK",
        size: int = 50,
        encrypt: bool = False,
        shareable: bool = False,
        name: str | None = None,
        created_at: TimeLike | None = None,
        fields: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Add a disk and return its API Disk object.

        A disk in an attached state (ATTACHED/ATTACHING/DETACHING) without ``instance_id`` is attached
        to a new ``ins-…`` of its own. ``tags`` may be a ``{key: value}`` dict. ``fields`` sets any other
        Disk API field (e.g. ``{"DiskChargeType": "PREPAID"}``). Raises ValueError on bad input.
        """
        if not _REGION.match(region):
            raise ValueError(f"bad region {region!r}")
        checks = ((disk_state, DISK_STATES, "disk_state"), (disk_type, DISK_TYPES, "disk_type"))
        for value, allowed, what in (*checks, (disk_usage, DISK_USAGES, "disk_usage")):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
        if not isinstance(size, int) or size <= 0:
            raise ValueError("size must be a positive number of GiB")
        if instance_id is not None and not ids.INSTANCE_ID.match(instance_id):
            raise ValueError(f"instance_id {instance_id!r} is not ins- followed by 8 of [a-z0-9]")
        if instance_id is not None and disk_state == "UNATTACHED":
            raise ValueError("an UNATTACHED disk cannot have an instance_id")
        unknown = sorted(set(fields or {}) - DISK_FIELDS)
        if unknown:
            raise ValueError(f"unknown Disk field(s): {', '.join(unknown)}")
        derived = sorted(set(fields or {}) & {"DiskId", "SnapshotCount", "SnapshotSize"})
        if derived:
            raise ValueError(f"{', '.join(derived)} cannot be set through fields")
        tag_list = _tags(tags, "tags")
        with self._gateway.lock:
            state = self._gateway.runtime.state
            if disk_id is None:
                disk_id = state.ids.new("disk", state.disks)
            elif not ids.DISK_ID.match(disk_id):
                raise ValueError(f"disk_id {disk_id!r} is not disk- followed by 8 of [a-z0-9]")
            if disk_id in state.disks:
                raise ValueError(f"disk {disk_id} already exists")
            if instance_id is None and disk_state in _ATTACHED_STATES:
                instance_id = state.ids.new("ins", {d.instance_id for d in state.disks.values()})
            disk = state.add_disk(
                disk_id=disk_id,
                region=region,
                zone=zone or f"{region}-3",
                instance_id=instance_id or "",
                tags=tag_list,
                snapshot_ability=snapshot_ability,
                disk_state=disk_state,
                disk_type=disk_type,
                disk_usage=disk_usage,
                size=size,
                encrypt=encrypt,
                shareable=shareable,
                name=name if name is not None else disk_id,
                created_at=_epoch(created_at, "created_at") if created_at is not None else self._clock.now(),
                overrides=copy.deepcopy(fields),
            )
            return state.render_disk(disk)

    def add_disks(
        self,
        count: int,
        *,
        region: str = "ap-guangzhou",
        tags: list[dict[str, str]] | dict[str, str] | None = None,
        instance_id: str | None = None,
        prefix: str | None = None,
        **disk_options: Any,
    ) -> list[str]:
        """Add ``count`` disks (names ``<prefix>-0000``…, prefix default ``disk``); return their ids.

        Ids come from the emulator RNG, so they repeat run after run when ``rng_seed`` is set. Other
        keyword arguments are passed to :meth:`add_disk`.
        """
        stem = prefix or "disk"
        return [
            str(
                self.add_disk(
                    region=region, tags=tags, instance_id=instance_id, name=f"{stem}-{i:04d}", **disk_options
                )["DiskId"]
            )
            for i in range(count)
        ]

    def add_snapshot(
        self,
        disk_id: str,
        *,
        state: str = "NORMAL",
        tags: list[dict[str, str]] | dict[str, str] | None = None,
        name: str = "Unnamed",
        created_at: TimeLike | None = None,
        images: list[str] | list[dict[str, str]] | None = None,
        deadline: TimeLike | None = None,
        snapshot_id: str | None = None,
        disk_usage: str | None = None,
    ) -> str:
        """Add a pre-existing snapshot of a known disk (e.g. one made by someone else); return its id.

        ``state="CREATING"`` progresses like a new snapshot from ``created_at`` (default now). ``images``
        are image ids or ``{"ImageId", "ImageName"}``. Times take epoch seconds, ``YYYY-MM-DD HH:MM:SS``
        (Beijing time, as CreateTime reads), ISO-8601 with offset, or aware datetimes. The quota is not
        enforced here.
        """
        if state not in SNAPSHOT_STATES:
            raise ValueError(f"state must be one of {', '.join(SNAPSHOT_STATES)}, got {state!r}")
        if disk_usage is not None and disk_usage not in DISK_USAGES:
            raise ValueError(f"disk_usage must be one of {', '.join(DISK_USAGES)}")
        image_list = [
            {"ImageId": i, "ImageName": i}
            if isinstance(i, str)
            else {"ImageId": i["ImageId"], "ImageName": i.get("ImageName", "")}
            for i in images or []
        ]
        tag_list = _tags(tags, "tags")
        with self._gateway.lock:
            st = self._gateway.runtime.state
            disk = st.disks.get(disk_id)
            if disk is None:
                raise ValueError(f"no disk {disk_id}; add it first")
            if snapshot_id is not None and (
                not ids.SNAPSHOT_ID.match(snapshot_id) or snapshot_id in st.snapshots
            ):
                raise ValueError(f"snapshot_id {snapshot_id!r} is malformed or taken")
            snap = st.add_snapshot(
                disk,
                name=name,
                state=state,
                created_at=_epoch(created_at, "created_at") if created_at is not None else self._clock.now(),
                deadline=_epoch(deadline, "deadline") if deadline is not None else None,
                tags=tag_list,
                images=image_list,
                disk_usage=disk_usage,
                snapshot_id=snapshot_id,
            )
            return snap.snapshot_id

    def add_queue(self, name: str) -> None:
        """Create a CMQ queue for SendCmqMsg (idempotent)."""
        if not _QUEUE_NAME.match(name):
            raise ValueError(f"bad queue name {name!r}: a letter then up to 63 of [A-Za-z0-9_-]")
        with self._gateway.lock:
            self._gateway.runtime.state.add_queue(name)

    def add_topic(self, name: str) -> None:
        """Create a CMQ topic for PublishCmqMsg (idempotent)."""
        if not _QUEUE_NAME.match(name):
            raise ValueError(f"bad topic name {name!r}: a letter then up to 63 of [A-Za-z0-9_-]")
        with self._gateway.lock:
            self._gateway.runtime.state.add_topic(name)

    def add_credential(self, secret_id: str, secret_key: str, token: str | None = None) -> None:
        """Accept another key pair; with ``token``, requests must carry exactly it in X-TC-Token."""
        if not secret_id or not secret_key:
            raise ValueError("secret_id and secret_key must be non-empty")
        with self._gateway.lock:
            self._gateway.runtime.credentials[secret_id] = Credential(secret_id, secret_key, token)

    # -- inspection ------------------------------------------------------------------------------
    def _tick(self) -> float:
        now = self._clock.now()
        self._gateway.runtime.state.tick(now)
        return now

    def disks(self, region: str | None = None) -> list[dict[str, Any]]:
        """API Disk objects (copies), in creation order."""
        with self._gateway.lock:
            self._tick()
            st = self._gateway.runtime.state
            return [st.render_disk(d) for d in st.disks.values() if region is None or d.region == region]

    def snapshots(self, disk_id: str | None = None, region: str | None = None) -> list[dict[str, Any]]:
        """API Snapshot objects (copies) as of now, in creation order."""
        with self._gateway.lock:
            now = self._tick()
            st = self._gateway.runtime.state
            return [
                st.render_snapshot(s, now)
                for s in sorted(st.snapshots.values(), key=lambda s: (s.created_at, s.seq))
                if (disk_id is None or s.disk_id == disk_id) and (region is None or s.region == region)
            ]

    def snapshot_groups(self, region: str | None = None) -> list[dict[str, Any]]:
        """API SnapshotGroup objects (copies) as of now, in creation order."""
        with self._gateway.lock:
            now = self._tick()
            st = self._gateway.runtime.state
            groups = sorted(st.groups.values(), key=lambda g: g.seq)
            return [st.render_group(g, now) for g in groups if region is None or g.region == region]

    def calls(self, action: str | None = None, service: str | None = None) -> list[dict[str, Any]]:
        """Every request that passed the signature check (including throttled and faulted ones)."""
        with self._gateway.lock:
            return [
                copy.deepcopy(c)
                for c in self._gateway.runtime.calls
                if (action is None or c["action"] == action) and (service is None or c["service"] == service)
            ]

    @property
    def rejected(self) -> list[dict[str, Any]]:
        """Requests refused by authentication (AuthFailure.*) or rate limiting (RequestLimitExceeded)."""
        with self._gateway.lock:
            return copy.deepcopy(self._gateway.runtime.rejected)

    def reset_calls(self) -> None:
        """Forget the recorded calls and rejections."""
        with self._gateway.lock:
            self._gateway.runtime.calls.clear()
            self._gateway.runtime.rejected.clear()

    def messages(self, queue: str | None = None, topic: str | None = None) -> list[dict[str, Any]]:
        """Every CMQ message sent (received or not), optionally for one queue or topic."""
        with self._gateway.lock:
            return [
                dict(m)
                for m in self._gateway.runtime.state.messages
                if (queue is None or m.get("QueueName") == queue)
                and (topic is None or m.get("TopicName") == topic)
            ]

    def commands(self, instance_id: str | None = None) -> list[dict[str, Any]]:
        """Every TAT command run (one record per instance), in start order, as of the state clock.

        Records hold the decoded ``Content`` (parameters substituted), ``TaskStatus``, ``ExitCode`` and
        ``Output`` (None/"" while running) and ``start``/``end`` in state-clock epoch seconds (``end`` is
        None while running), so a test can order them against ``calls()`` times.
        """
        with self._gateway.lock:
            now = self._tick()
            tasks = self._gateway.runtime.state.tat.tasks.values()
            return [t.record(now) for t in tasks if instance_id is None or t.instance_id == instance_id]

    @property
    def account_uin(self) -> str:
        """The emulated account's UIN, as in Tag API resource names ``qcs::cvm:<region>:uin/<UIN>:…``."""
        return ids.ACCOUNT_UIN

    def receive(
        self, queue: str, max_messages: int = 10, *, now: float | None = None
    ) -> list[dict[str, Any]]:
        """Pop up to ``max_messages`` messages of ``queue`` whose delay has elapsed on the state clock
        (or at ``now``). Raises KeyError for an unknown queue."""
        if max_messages < 1:
            raise ValueError("max_messages must be >= 1")
        with self._gateway.lock:
            at = self._clock.now() if now is None else now
            return self._gateway.runtime.state.receive(queue, max_messages, at)

    # -- SCF functions and invocations (docs/emulator.md, "SCF") ------------------------------------
    def add_function(
        self,
        name: str,
        *,
        code_dir: str | Path,
        handler: str = "index.main_handler",
        environment: Mapping[str, str] | None = None,
        timeout: int = 3,
        memory_size: int = 128,
        runtime: str = "Python3.10",
        namespace: str = "default",
        region: str = "ap-guangzhou",
        python_path: Sequence[str | Path] = (),
    ) -> dict[str, Any]:
        """Register an Active SCF function whose code is the directory ``code_dir`` (``python_path``
        directories follow it on the child's sys.path, e.g. ``lib/`` for a repository run); returns its
        GetFunction view. Raises ValueError on bad input."""
        return scf_facade.add_function(
            self._gateway,
            name,
            code_dir=code_dir,
            handler=handler,
            environment=environment,
            timeout=timeout,
            memory_size=memory_size,
            runtime=runtime,
            namespace=namespace,
            region=region,
            python_path=python_path,
        )

    def functions(self, region: str | None = None) -> list[dict[str, Any]]:
        """GetFunction views of every SCF function, with ``Region``, ``RetryNum`` and ``MsgTTL``."""
        return scf_facade.functions(self._gateway, region)

    def invocations(self, state: str | None = None) -> list[dict[str, Any]]:
        """SCF invocations (``pending``, ``running``, ``done``, ``failed`` or all), oldest first."""
        return scf_facade.invocations(self._gateway, state)

    def run_invocation(self, request_id: str, *, here: LocalHandler | None = None) -> dict[str, Any]:
        """Run one pending invocation in a fresh Python process (or with ``here`` in this one);
        returns its record."""
        return scf_facade.run_invocation(self._gateway, request_id, here)

    def run_pending(self, max_rounds: int = 10, *, here: LocalHandler | None = None) -> list[dict[str, Any]]:
        """Run pending invocations until none is pending (at most ``max_rounds`` rounds), each in a
        fresh Python process, or with ``here(event, context)`` in this process."""
        return scf_facade.run_pending(self._gateway, max_rounds, here)

    # -- control ---------------------------------------------------------------------------------
    def add_fault(self, fault: Fault) -> Fault:
        """Activate a fault; the returned object is live (its ``times`` counts down)."""
        with self._gateway.lock:
            return self._gateway.runtime.faults.add(fault)

    def clear_faults(self) -> None:
        """Deactivate every fault."""
        with self._gateway.lock:
            self._gateway.runtime.faults.clear()

    def faults(self) -> list[Fault]:
        """The active faults (live objects)."""
        with self._gateway.lock:
            return list(self._gateway.runtime.faults.faults)

    @property
    def faults_injected(self) -> dict[str, int]:
        """How often faults fired: error faults by code, others by kind (``lost_reply``, ``latency``)."""
        with self._gateway.lock:
            return dict(self._gateway.runtime.faults.injected)

    def set_rate_limit(self, rps: float, action: str | None = None) -> None:
        """Requests per second for ``action`` or, with None, for every action (dropping per-action
        limits); 0 disables."""
        with self._gateway.lock:
            self._gateway.runtime.limiter.set_rate(rps, action)

    def set_rate_scope(self, scope: str) -> None:
        """``"action"``: one token bucket per action for the account; ``"region"``: one per region and
        action. Every bucket starts full again."""
        with self._gateway.lock:
            self._gateway.runtime.limiter.set_scope(scope)

    def _known_instance(self, instance_id: str) -> None:
        if not ids.INSTANCE_ID.match(instance_id):
            raise ValueError(f"instance_id {instance_id!r} is not ins- followed by 8 of [a-z0-9]")
        state = self._gateway.runtime.state
        if not any(
            instance_id in (d.instance_id, *d.api.get("InstanceIdList", [])) for d in state.disks.values()
        ):
            raise ValueError(f"no disk is attached to {instance_id}; instances are known through their disks")

    def set_agent(self, instance_id: str, *, online: bool = True) -> None:
        """Put an instance's TAT agent Online (the default for every instance) or Offline. Offline, it
        is reported so by DescribeAutomationAgentStatus and RunCommand on it fails with
        ``ResourceUnavailable.AgentStatusNotOnline``."""
        with self._gateway.lock:
            self._known_instance(instance_id)
            self._gateway.runtime.state.tat.set_agent(instance_id, online=online, now=self._clock.now())

    def set_command_outcome(
        self,
        instance_id: str,
        outcome: str = "success",
        *,
        exit_code: int | None = None,
        output: str = "",
        duration: float | None = None,
        match: str | None = None,
    ) -> None:
        """Script what TAT commands do on an instance from now on.

        ``outcome`` is ``"success"`` (exit 0), ``"failure"`` (``exit_code``, default 1) or ``"timeout"``
        (TIMEOUT once the command's Timeout has passed on the state clock). ``output`` is the command's
        output text; ``duration`` its run time in state-clock seconds (default ``command_seconds``).
        With ``match``, the rule applies only to commands whose decoded content contains that text;
        the newest applicable rule wins, and an instance without rules succeeds.
        """
        if exit_code is None:
            exit_code = 1 if outcome == "failure" else 0
        rule = Outcome(outcome, exit_code, output, duration, match)
        with self._gateway.lock:
            self._known_instance(instance_id)
            self._gateway.runtime.state.tat.add_rule(instance_id, rule)

    def clear_command_outcomes(self, instance_id: str | None = None) -> None:
        """Forget the scripted outcomes of one instance (or all): commands succeed again."""
        with self._gateway.lock:
            self._gateway.runtime.state.tat.clear_rules(instance_id)

    def set_latency(self, seconds: float, action: str | None = None) -> None:
        """Delay before handling ``action`` or, with None, every action (dropping per-action delays)."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        with self._gateway.lock:
            rt = self._gateway.runtime
            if action is None:
                rt.latency_default = seconds
                rt.latency_overrides.clear()
            else:
                rt.latency_overrides[action] = seconds

    def advance(self, seconds: float) -> float:
        """Move the state clock forward (snapshot progress, Deadline expiry, message delays); returns
        the new emulator time."""
        with self._gateway.lock:
            now = self._clock.advance(seconds)
            self._gateway.runtime.state.tick(now)
            return now

    @property
    def now(self) -> float:
        """The state clock: wall time plus everything :meth:`advance` added."""
        return self._clock.now()

    def reset(self) -> None:
        """Back to the seed: resources, clock offset, faults, counters, calls, limits and latency."""
        with self._gateway.lock:
            self._clock.reset()
            self._gateway.runtime = self._fresh_runtime()
            self._apply_seed()


def _first(*values: Any) -> Any:
    return next(v for v in values if v is not None)
