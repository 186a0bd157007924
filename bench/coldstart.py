"""Cold start: fresh-process import of each handler vs. its third-party dependencies alone.

Each sample is a new interpreter running ``python -c``: ``time.perf_counter()`` around the
import statement inside the child, the child's ``ru_maxrss`` at the end, and the parent's
wall time for the whole process. Variants are interleaved (baseline, handler, handler, …,
then again) so that drift on a noisy machine hits them all alike; medians are reported.

Two layouts, each with its own baseline:

* ``source``: the repository (``sys.path`` = repo root + ``lib``, the venv's site-packages),
  the running interpreter, bytecode cached in ``__pycache__`` by a discarded warm-up round;
* ``zip``: ``dist/cbsnap-scf.zip`` unpacked, CPython 3.10 with ``-I -S -B`` and ``sys.path`` =
  the unpacked folder only, so only the package's own dependencies and its precompiled
  bytecode are used and nothing is written (SCF's code directory is read-only).
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common import ROOT, Row, clean_env, median, spread, verdict

BASELINE = "baseline"
BASELINE_IMPORTS = (
    "from tencentcloud.cbs.v20170312 import cbs_client",
    "import pydantic",
    "from aws_lambda_powertools import Logger",
)
# `import pydantic` alone is lazy: it defers BaseModel and the schema machinery until first
# use. This informational baseline uses pydantic the least any model-defining code can.
PYDANTIC_FLOOR = "baseline + 1 model"
FLOOR_IMPORTS = (
    *BASELINE_IMPORTS,
    "from pydantic import BaseModel",
    "class _Floor(BaseModel):\n    x: int",
)
GOAL = 1.15

_CHILD = """\
import sys, time, json, resource
sys.path[:0] = {paths!r}
t0 = time.perf_counter()
{imports}
t1 = time.perf_counter()
print(json.dumps({{"import_ms": (t1 - t0) * 1000,
                  "rss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}}))
"""


@dataclass
class Variant:
    """Something to import in a fresh process."""

    name: str
    imports: tuple[str, ...]
    goal: bool = True
    vs_floor: bool = True  # worth comparing with the "+1 model" floor
    import_ms: list[float] = field(default_factory=list)
    wall_ms: list[float] = field(default_factory=list)
    rss_kb: list[int] = field(default_factory=list)


@dataclass
class Layout:
    """Where the code is imported from, and how the interpreter is started."""

    name: str
    python: str
    paths: list[str]
    flags: list[str]
    handler_module: str  # format string: "handlers.{}" (source) or "{}" (zip root)

    def command(self, imports: Sequence[str], extra_flags: Sequence[str] = ()) -> list[str]:
        code = _CHILD.format(paths=self.paths, imports="\n".join(imports))
        return [self.python, *self.flags, *extra_flags, "-c", code]


def handler_names() -> list[str]:
    """The handler modules (``handlers/*.py`` but ``__init__``)."""
    return sorted(p.stem for p in (ROOT / "handlers").glob("*.py") if p.stem != "__init__")


def variants_for(layout: Layout, handlers: Sequence[str]) -> list[Variant]:
    """The baseline, then each handler; the index router counts with the timer module it loads."""
    out = [
        Variant(BASELINE, BASELINE_IMPORTS),
        Variant(PYDANTIC_FLOOR, FLOOR_IMPORTS, goal=False, vs_floor=False),
    ]
    for name in handlers:
        module = layout.handler_module.format(name)
        if name == "index":
            # index imports the trigger's module on its first event: a timer cold start is both.
            timer = layout.handler_module.format("timer")
            out.append(Variant("index (router only)", (f"import {module}",), goal=False, vs_floor=False))
            out.append(Variant("index → timer", (f"import {module}", f"import {timer}"), goal=False))
        else:
            out.append(Variant(name, (f"import {module}",)))
    return out


def _sample(layout: Layout, variant: Variant, env: dict[str, str], record: bool) -> None:
    start = time.perf_counter()
    proc = subprocess.run(
        layout.command(variant.imports), capture_output=True, text=True, env=env, check=False, cwd="/"
    )
    wall = (time.perf_counter() - start) * 1000
    if proc.returncode != 0:
        raise RuntimeError(f"{layout.name}/{variant.name}: import failed:\n{proc.stderr[-3000:]}")
    figures = json.loads(proc.stdout.strip().splitlines()[-1])
    if record:
        variant.import_ms.append(figures["import_ms"])
        variant.wall_ms.append(wall)
        variant.rss_kb.append(figures["rss_kb"])


def measure(layout: Layout, variants: list[Variant], runs: int) -> None:
    """One discarded warm-up round (writes bytecode, warms the page cache), then ``runs`` rounds."""
    env = clean_env()
    for variant in variants:
        _sample(layout, variant, env, record=False)
    for _ in range(runs):
        for variant in variants:
            _sample(layout, variant, env, record=True)


# -- -X importtime attribution -------------------------------------------------------------

_IMPORTTIME = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
OTHER = "(outside cbsnap)"


@dataclass(frozen=True)
class Imported:
    """One line of ``-X importtime``: a module, its own time, and the cbsnap module that pulled it in."""

    name: str
    self_us: int
    owner: str  # the innermost cbsnap.* / handler module on its import chain (itself, if ours)


def _importtime(layout: Layout, imports: Sequence[str], env: dict[str, str]) -> list[Imported]:
    """Every module of one ``-X importtime`` run, with the cbsnap module responsible for it."""
    proc = subprocess.run(
        layout.command(imports, ["-X", "importtime"]),
        capture_output=True,
        text=True,
        env=env,
        check=False,
        cwd="/",
    )
    if proc.returncode != 0:
        raise RuntimeError(f"importtime run failed:\n{proc.stderr[-3000:]}")
    lines = []
    for line in proc.stderr.splitlines():
        m = _IMPORTTIME.match(line)
        if m:
            lines.append((m.group(4), int(m.group(1)), len(m.group(3))))
    # A module's line comes after those of the modules it imported, indented one step less:
    # walking backwards, a stack of open ancestors gives every module its import chain.
    out: list[Imported] = []
    stack: list[tuple[str, int]] = []  # (name, depth)
    for name, self_us, depth in reversed(lines):
        while stack and stack[-1][1] >= depth:
            stack.pop()
        stack.append((name, depth))
        ours = [n for n, _ in stack if _is_ours(n)]
        out.append(Imported(name, self_us, ours[-1] if ours else OTHER))
    return out


def _is_ours(module: str) -> bool:
    return module.startswith(("cbsnap.", "handlers.")) or module in HANDLER_MODULES


HANDLER_MODULES = frozenset({"timer", "messages", "webhook", "index"})


@dataclass
class Attribution:
    """What a handler imports beyond the baseline, and what that costs (medians of a few runs)."""

    extra_self_ms: float
    extra_modules: int
    by_package: list[tuple[str, float, int]]  # (top-level package, self ms, modules)
    top_modules: list[tuple[str, float]]  # (module, self ms)
    by_owner: list[tuple[str, float, list[tuple[str, float]]]]  # (cbsnap module, ms, [(module, ms)])


def attribute(layout: Layout, variant: Variant, baseline: Variant, runs: int) -> Attribution:
    """``-X importtime`` of ``variant`` minus the modules the baseline imports too.

    Each extra module's own time is charged to the innermost cbsnap module that imported
    it (directly or through third-party code), so ``by_owner`` names the imports of ours
    that cost the time.
    """
    env = clean_env()
    base_modules: set[str] = set()
    samples: dict[str, list[int]] = defaultdict(list)
    owners: dict[str, str] = {}
    for _ in range(runs):
        base_modules.update(i.name for i in _importtime(layout, baseline.imports, env))
        for imported in _importtime(layout, variant.imports, env):
            samples[imported.name].append(imported.self_us)
            owners[imported.name] = imported.owner
    self_ms = {m: median(v) / 1000 for m, v in samples.items() if m not in base_modules}
    packages: dict[str, list[float]] = defaultdict(list)
    charged: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for module, ms in self_ms.items():
        packages[module.split(".")[0]].append(ms)
        charged[owners[module]].append((module, ms))
    by_package = sorted(((p, sum(v), len(v)) for p, v in packages.items()), key=lambda x: -x[1])
    top = sorted(self_ms.items(), key=lambda kv: -kv[1])
    by_owner = sorted(
        (
            (owner, sum(ms for _, ms in items), sorted(items, key=lambda kv: -kv[1])[:4])
            for owner, items in charged.items()
        ),
        key=lambda x: -x[1],
    )
    return Attribution(sum(self_ms.values()), len(self_ms), by_package[:8], top[:12], by_owner[:8])


def describe_attribution(name: str, a: Attribution) -> str:
    lines = [
        f"  -X importtime, {name}: {a.extra_modules} modules beyond the baseline's, "
        f"{a.extra_self_ms:.1f} ms of their own time",
        "    by package (ms, modules): " + ", ".join(f"{p} {ms:.1f} ({n})" for p, ms, n in a.by_package),
        "    top modules (ms): " + ", ".join(f"{m} {ms:.1f}" for m, ms in a.top_modules),
        "    charged to the cbsnap module that imported them (ms: itself and what it pulled in):",
    ]
    for owner, total, items in a.by_owner:
        parts = ", ".join(f"{m} {ms:.1f}" for m, ms in items)
        lines.append(f"      {owner:<22} {total:5.1f}  ({parts})")
    return "\n".join(lines)


def run_layout(layout: Layout, handlers: Sequence[str], runs: int, attribution_runs: int) -> list[Row]:
    """Measure one layout; print its detail lines; return its table rows."""
    variants = variants_for(layout, handlers)
    measure(layout, variants, runs)
    baseline, floor = variants[0], variants[1]
    base_import = median(baseline.import_ms)
    base_wall = median(baseline.wall_ms)
    floor_import = median(floor.import_ms)
    print(
        f"[{layout.name}] {layout.python} {' '.join(layout.flags)}; sys.path += {layout.paths}; "
        f"{runs} interleaved runs, medians (min-max)",
        flush=True,
    )
    print(
        f"  {'variant':<22} {'import ms':>20} {'process ms':>20} {'peak RSS MB':>12} "
        f"{'import ratio':>12} {'process ratio':>13} {'vs +1 model':>11}",
        flush=True,
    )
    rows: list[Row] = []
    section = f"cold start ({layout.name})"
    for v in variants:
        imp, wall, rss = median(v.import_ms), median(v.wall_ms), median(v.rss_kb) / 1024
        ratio, wall_ratio = imp / base_import, wall / base_wall
        print(
            f"  {v.name:<22} {imp:8.1f} ({spread(v.import_ms):>10}) {wall:8.1f} ({spread(v.wall_ms):>10}) "
            f"{rss:12.1f} {ratio:12.2f} {wall_ratio:13.2f} {imp / floor_import:11.2f}",
            flush=True,
        )
        if v is baseline:
            value = f"import {imp:.0f} ms, process {wall:.0f} ms, RSS {rss:.1f} MB"
            rows.append(Row(section, "baseline: SDK cbs_client + pydantic + powertools Logger", value))
            continue
        rows.append(
            Row(
                section,
                f"{v.name}: import ratio to baseline",
                f"{ratio:.2f}x ({imp:.0f} ms; process {wall_ratio:.2f}x; "
                + (f"vs +1 model {imp / floor_import:.2f}x; " if v.vs_floor else "")
                + f"RSS {rss:.1f} MB)",
                f"≤ {GOAL}x" if v.goal else "",
                verdict(ratio <= GOAL) if v.goal else "INFO",
            )
        )
        if v.goal and v.vs_floor:
            # `import pydantic` alone is lazy; cbsnap's models (the brief requires pydantic
            # models) load BaseModel's machinery, as any pydantic user does. Judged both ways.
            rows.append(
                Row(
                    section,
                    f"{v.name}: import ratio to baseline with pydantic's BaseModel loaded",
                    f"{imp / floor_import:.2f}x",
                    f"≤ {GOAL}x",
                    verdict(imp / floor_import <= GOAL),
                )
            )
    if attribution_runs > 0:
        missed = [v for v in variants[1:] if v.goal and median(v.import_ms) / base_import > GOAL]
        for v in missed:
            a = attribute(layout, v, baseline, attribution_runs)
            print(describe_attribution(v.name, a), flush=True)
    return rows


def source_layout(python: str) -> Layout:
    return Layout(
        name="source tree",
        python=python,
        paths=[str(ROOT), str(ROOT / "lib")],
        flags=["-E", "-s"],
        handler_module="handlers.{}",
    )


def zip_layout(python310: str, unpacked: Path) -> Layout:
    return Layout(
        name="built zip",
        python=python310,
        paths=[str(unpacked)],
        flags=["-I", "-S", "-B"],
        handler_module="{}",
    )


def zip_handlers(unpacked: Path, handlers: Sequence[str]) -> list[str]:
    """The handlers present at the zip's root."""
    return [h for h in handlers if (unpacked / f"{h}.py").exists()]


def unpacked_zip(zip_path: Path, dest: Path) -> Path:
    """Unzip ``zip_path`` into ``dest`` (SCF unpacks the code package the same way)."""
    import zipfile

    with zipfile.ZipFile(zip_path) as zf:
        zf.extractall(dest)
    return dest


def describe_baseline() -> str:
    return "; ".join(BASELINE_IMPORTS)


def python_version(python: str) -> str:
    """``X.Y.Z`` of an interpreter ("" when it does not run)."""
    try:
        out = subprocess.run(
            [python, "-I", "-S", "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def resolve_python(candidate: str) -> str:
    """The real interpreter behind ``candidate`` (pyenv shims are shell scripts: skip their cost)."""
    out = subprocess.run(
        [candidate, "-I", "-S", "-c", "import sys; print(sys.executable)"],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip() or candidate
