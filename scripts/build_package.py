#!/usr/bin/env python3
"""Build the SCF code package: ``dist/cbsnap-scf.zip``.

Layout of the zip (SCF imports ``file.function`` from the zip root):

* ``timer.py``, ``messages.py``, ``webhook.py`` … — every ``handlers/*.py`` but ``__init__.py``;
* ``cbsnap/`` — ``lib/cbsnap``, the product package (the emulator and the CLI are separate
  packages, ``cbsnap_emulator`` and ``cbsnap_cli``, and never ship);
* the runtime dependencies of ``pyproject.toml`` at the versions pinned in ``constraints.txt``,
  installed from manylinux2014 x86_64 wheels for CPython 3.10 (``pip install --platform … --target``):
  no sdists, nothing built on this machine, no dev tools;
* ``__pycache__/*.cpython-310.pyc`` compiled by a CPython 3.10 interpreter, hash-based and unchecked
  (PEP 552). SCF's code directory is most likely read-only, so without them every cold start
  recompiles the sources it imports; timestamp-based pycs would go stale as soon as unzipping
  changes the sources' mtimes. Unchecked pycs are also byte-for-byte reproducible.

``--bytecode`` chooses what gets a pyc: ``imported`` (default) compiles every module the handlers and
the cbsnap package import (found by importing each handler and every cbsnap module, including those
the runtime imports lazily, in a clean 3.10 interpreter with only the package on ``sys.path``);
``all`` compiles everything; ``none`` nothing (to measure).
A module outside the import set still works: it is compiled in memory if it is ever imported.

The build is reproducible: two builds of one commit give byte-identical zips (the package test checks
it). Entries are sorted, with fixed permissions and one timestamp, ``SOURCE_DATE_EPOCH`` (default
1980-01-01; ``scripts/build.sh`` sets the commit's time); the bytecode is compiled with a fixed
``PYTHONHASHSEED`` so that set and frozenset constants marshal in the same order every time.

Run it through ``scripts/build.sh``, which finds the 3.10 interpreter.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLATFORM = "manylinux2014_x86_64"
PYTHON_VERSION = "3.10"
EXCLUDED_PACKAGE_PARTS = {"__pycache__"}
EXCLUDED_PACKAGE_FILES: set[str] = set()
# Dead weight in the dependencies, removed: powertools' Swagger UI assets (1.7 MB of JS/CSS, served
# only by its OpenAPI event handler, which cbsnap does not use) and the SDK's asyncio clients
# (cbsnap uses the synchronous ones; they are referenced only by one another). The build fails if
# any remaining source imports a removed module.
PRUNE_GLOBS = (
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/*.js",
    "aws_lambda_powertools/event_handler/openapi/swagger_ui/*.css",
    "tencentcloud/common/*_async.py",
    "tencentcloud/common/http/*_async.py",
    "tencentcloud/*/v*/*_client_async.py",
    "certifi/tests/*",  # certifi's own test suite
    "*/tests/**/*",  # any other dependency's test suite
    "annotated_types/test_cases.py",  # annotated-types' test data, imported by nothing
    "pydantic/mypy.py",  # pydantic's mypy plugin: a type checker's, never the runtime's
    "pydantic/v1/**/*",  # the pydantic 1 compatibility copy: cbsnap is pydantic 2 only
    # The SDK's error-code constants: documentation as code, imported by nothing (the SDK raises
    # TencentCloudSDKException with the code as a string).
    "tencentcloud/*/v*/errorcodes.py",
    "**/py.typed",  # PEP 561 markers, for type checkers
    # Modules no handler imports (the import probe's list), optional parts of their packages:
    # urllib3's SOCKS, pyOpenSSL and Emscripten back-ends, each imported only on request
    "urllib3/contrib/socks.py",
    "urllib3/contrib/pyopenssl.py",
    "urllib3/contrib/emscripten/**/*",
    "charset_normalizer/cli/**/*",
    # charset-normalizer's pure-Python md/cd: the wheel's compiled md/cd extensions sit beside them and
    # are what Python imports (extension modules come first on the same path entry).
    "charset_normalizer/md.py",
    "charset_normalizer/cd.py",
    "pydantic/experimental/**/*",  # imported only by code that opts in
    "idna/cli.py",
    "idna/codec.py",
    "idna/compat.py",
    "requests/help.py",  # `python -m requests.help`
    "certifi/__main__.py",
    # powertools utilities cbsnap never imports (it uses Logger only; idempotency and
    # parameters would even need boto3): 2 MB that keep the package under 15 MB.
    *(
        f"aws_lambda_powertools/{part}/**/*"
        for part in (
            "event_handler",
            *(
                f"utilities/{name}"
                for name in (
                    "auth_alpha",
                    "batch",
                    "circuit_breaker",
                    "data_classes",
                    "data_masking",
                    "feature_flags",
                    "idempotency",
                    "kafka",
                    "metadata",
                    "parameters",
                    "parser",
                    "streaming",
                    "validation",
                )
            ),
        )
    ),
)
# Files that import a pruned module only lazily, inside a function cbsnap never calls:
# powertools' pydantic_to_dict serves Logger.inject_lambda_context(log_event=True), unused here.
# pydantic reaches for pydantic.v1 only for a type with a v1-style __get_validators__; cbsnap has none.
# requests imports urllib3.contrib.socks inside try/except ImportError: without PySocks that import
# fails anyway, so its absence changes nothing.
PRUNED_LAZY_IMPORTERS = {
    "aws_lambda_powertools/shared/functions.py",
    "pydantic/_internal/_generate_schema.py",
    "requests/adapters.py",
}
# In *.dist-info only the licences stay (they must travel with the code). METADATA, WHEEL, RECORD,
# entry points and SBOMs are read by installers, not at run time: no module of the package calls
# importlib.metadata for a distribution it ships (pydantic's plugin scan finds no entry points, as
# before; the package test runs every handler from the zip).
LICENCE_NAMES = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE|AUTHORS)", re.IGNORECASE)
DEFAULT_EPOCH = 315532800  # 1980-01-01T00:00:00Z, the earliest time a zip entry can carry
# Fixed for every interpreter the build starts: set/frozenset constants marshal in hash order.
HASH_SEED = "0"
FORBIDDEN_TOP_LEVEL = (
    "boto3",
    "botocore",
    "pytest",
    "_pytest",
    "hypothesis",
    "mypy",
    "ruff",
    "tests",
    "cbsnap_emulator",
    "cbsnap_cli",
)
MB = 1024 * 1024


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_requirements(pyproject: Path, extras: Sequence[str]) -> list[str]:
    """``[project].dependencies`` (plus the named optional extras) as bare requirement strings."""
    text = pyproject.read_text(encoding="utf-8")
    try:
        import tomllib

        project = tomllib.loads(text)["project"]
        deps = list(project.get("dependencies", []))
        for extra in extras:
            deps.extend(project.get("optional-dependencies", {})[extra])
        return deps
    except ImportError:
        pass

    # Python 3.10 without tomli: the arrays are simple lists of quoted strings.
    def array(key: str) -> list[str]:
        match = re.search(rf"^{re.escape(key)}\s*=\s*\[(.*?)\]", text, re.MULTILINE | re.DOTALL)
        if match is None:
            raise SystemExit(f"pyproject.toml: no {key} array")
        return re.findall(r'"([^"]+)"', match.group(1))

    deps = array("dependencies")
    for extra in extras:
        deps.extend(array(extra))
    return deps


def read_pins(constraints: Path) -> dict[str, str]:
    """``name==version`` lines of constraints.txt, by normalised name."""
    pins: dict[str, str] = {}
    for raw in constraints.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins[normalize(name)] = version.strip()
    return pins


def pinned(requirements: Iterable[str], pins: dict[str, str]) -> list[str]:
    """Each requirement as ``name==pin``; a runtime dependency without a pin is an error."""
    out = []
    for req in requirements:
        name = re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0]
        pin = pins.get(normalize(name))
        if pin is None:
            raise SystemExit(f"constraints.txt has no pin for runtime dependency {name!r}")
        out.append(f"{name}=={pin}")
    return out


def pip_install(requirements: Sequence[str], target: Path, constraints: Path, quiet: bool) -> None:
    """Install wheels for CPython 3.10 manylinux x86_64 into ``target`` (no sdists, no bytecode)."""
    cmd = [
        sys.executable, "-m", "pip", "install",
        "--disable-pip-version-check", "--no-compile", "--no-warn-script-location",
        "--platform", PLATFORM, "--python-version", PYTHON_VERSION,
        "--implementation", "cp", "--only-binary=:all:",
        "--target", str(target), "-c", str(constraints), *requirements,
    ]  # fmt: skip
    if quiet:
        cmd.insert(4, "--quiet")
    subprocess.run(cmd, check=True)  # noqa: S603 - our own argv, no shell


def check_all_pinned(target: Path, pins: dict[str, str]) -> list[str]:
    """Every installed distribution must be pinned, at its pin. Returns ``name==version`` lines."""
    found = []
    for meta in sorted(target.glob("*.dist-info")):
        name, version = meta.name[: -len(".dist-info")].rsplit("-", 1)
        pin = pins.get(normalize(name))
        if pin != version:
            raise SystemExit(f"{name} {version} was installed but constraints.txt pins {pin}")
        found.append(f"{name}=={version}")
    return found


def _licence(path: Path, dist_info: Path) -> bool:
    """Whether ``path`` (inside ``dist_info``) is a licence file or inside a licences directory."""
    parts = path.relative_to(dist_info).parts
    return bool(LICENCE_NAMES.match(parts[-1])) or parts[0] in ("licenses", "licences")


def clean_dependencies(target: Path) -> None:
    """Drop what SCF never uses: console scripts, dist-info but licences, type stubs, PRUNE_GLOBS."""
    shutil.rmtree(target / "bin", ignore_errors=True)
    for path in sorted(target.rglob("*")):
        if not path.is_file():
            continue
        dist_info = next((d for d in path.parents if d.name.endswith(".dist-info")), None)
        if (dist_info is not None and not _licence(path, dist_info)) or path.suffix == ".pyi":
            path.unlink()
    for directory in sorted(target.rglob("*"), reverse=True):  # emptied dist-info subdirectories
        if directory.is_dir() and ".dist-info" in str(directory) and not any(directory.iterdir()):
            directory.rmdir()
    for cache in sorted(target.rglob("__pycache__"), reverse=True):
        shutil.rmtree(cache)
    removed = sorted({p for pattern in PRUNE_GLOBS for p in target.glob(pattern) if p.is_file()})
    for path in removed:
        path.unlink()
    # deepest first, so a pruned package's emptied sub-packages go before it
    for directory in sorted({d for p in removed for d in p.parents if target in d.parents}, reverse=True):
        if directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
    # A removed module must not be imported by what remains (absolute imports here; the
    # import probe and the package test, which run every handler, catch the rest).
    names = {
        ".".join(p.relative_to(target).with_suffix("").parts[: -1 if p.stem == "__init__" else None])
        for p in removed
        # a source whose compiled extension module stays is still importable (charset_normalizer.md)
        if p.suffix == ".py" and not any(p.parent.glob(f"{p.stem}.*.so"))
    }
    if names:
        dotted = "|".join(re.escape(n) for n in sorted(names))
        imports = re.compile(rf"^\s*(?:from|import)\s+({dotted})\b", re.MULTILINE)
        for path in sorted(target.rglob("*.py")):
            if path.relative_to(target).as_posix() in PRUNED_LAZY_IMPORTERS:
                continue
            match = imports.search(path.read_text(encoding="utf-8", errors="replace"))
            if match:
                raise SystemExit(f"{path.relative_to(target)} imports removed module {match.group(1)!r}")


def copy_sources(target: Path) -> list[str]:
    """``lib/cbsnap`` (minus dev-only parts) and the handler modules; returns the handler names."""
    src = ROOT / "lib" / "cbsnap"
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if EXCLUDED_PACKAGE_PARTS.intersection(rel.parts) or not path.is_file():
            continue
        if rel.parent == Path(".") and rel.name in EXCLUDED_PACKAGE_FILES:
            continue
        if path.suffix not in (".py", ".json", ".typed"):
            continue
        dest = target / "cbsnap" / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dest)
    handlers = []
    for path in sorted((ROOT / "handlers").glob("*.py")):
        if path.name == "__init__.py":
            continue
        dest = target / path.name
        if dest.exists() or (target / path.stem).exists() or path.stem in sys.stdlib_module_names:
            raise SystemExit(f"handler {path.name} collides with a module named {path.stem!r}")
        shutil.copyfile(path, dest)
        handlers.append(path.stem)
    return handlers


_PROBE = """
import importlib, json, pkgutil, sys
root, modules = json.loads(sys.stdin.read())
sys.path.insert(0, root)
sys.dont_write_bytecode = True
import cbsnap
# Every cbsnap module, so that what the runtime imports lazily (cbsnap.tdmq and the TDMQ SDK on the
# first result message, cbsnap.redis_store and redis with CBSNAP_REDIS_URL) is found too.
modules += [m.name for m in pkgutil.walk_packages(cbsnap.__path__, "cbsnap.")]
# Modules that need an optional extra: skipped when the build leaves the extra out.
optional = {"cbsnap.redis_store": "redis"}
for name in modules:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if optional.get(name) != exc.name:
            raise
prefix = root.rstrip("/") + "/"
files = sorted(
    m.__file__ for m in list(sys.modules.values())
    if (getattr(m, "__file__", None) or "").startswith(prefix) and m.__file__.endswith(".py")
)
print(json.dumps(files))
"""


def build_env(epoch: int) -> dict[str, str]:
    """The environment of the interpreters the build starts: no PYTHON* variable of the caller's, a fixed
    hash seed and the source date. (``-I``/``-E`` would ignore PYTHONHASHSEED too, so the compiler runs
    with ``-S -s`` and this environment instead.)"""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    return {**clean, "PYTHONHASHSEED": HASH_SEED, "SOURCE_DATE_EPOCH": str(epoch)}


def source_date_epoch() -> int:
    """``SOURCE_DATE_EPOCH`` from the environment (reproducible-builds.org), else 1980-01-01."""
    raw = os.environ.get("SOURCE_DATE_EPOCH", "").strip()
    if not raw:
        return DEFAULT_EPOCH
    if not raw.isdigit():
        raise SystemExit(f"SOURCE_DATE_EPOCH must be unix seconds, got {raw!r}")
    return max(int(raw), DEFAULT_EPOCH)


def imported_files(python: str, root: Path, modules: Sequence[str]) -> list[Path]:
    """Source files under ``root`` imported by ``modules`` and every cbsnap module, in a clean
    ``python`` (-I -S). A module that fails to import fails the build."""
    out = subprocess.run(  # noqa: S603 - the build's own interpreter and script
        [python, "-I", "-S", "-c", _PROBE],
        input=json.dumps([str(root), list(modules)]),
        capture_output=True,
        text=True,
        check=False,
        cwd=root,
        env=build_env(source_date_epoch()),
    )
    if out.returncode != 0:
        raise SystemExit(f"importing the handlers from the package failed:\n{out.stderr}")
    return [Path(p) for p in json.loads(out.stdout)]


_COMPILE = """
import json, py_compile, sys
root, files = json.loads(sys.stdin.read())
for path in files:
    py_compile.compile(
        path, dfile=path[len(root) + 1:], doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
assert sys.flags.hash_randomization == 0, "PYTHONHASHSEED was not applied"
print(sys.implementation.cache_tag)
"""


def compile_bytecode(python: str, root: Path, files: Sequence[Path]) -> str:
    """Compile ``files`` with ``python`` into its ``__pycache__`` (unchecked hash pycs); returns the tag."""
    payload = json.dumps([str(root), [str(f) for f in files]])
    out = subprocess.run(  # noqa: S603 - the build's own interpreter and script
        [python, "-S", "-s", "-c", _COMPILE],
        input=payload,
        capture_output=True,
        text=True,
        check=False,
        env=build_env(source_date_epoch()),
    )
    if out.returncode != 0:
        raise SystemExit(f"bytecode compilation failed:\n{out.stderr}")
    return out.stdout.strip()


# The SDK's generated request/response models: 1.3 MB (TDMQ), 0.46 MB (SCF), 0.41 MB (CBS) of source
# that nobody reads on SCF (a traceback through them names the model class anyway). Shipped as
# bytecode only: the compiled module moves to the source's place (``models.pyc``, which Python's
# sourceless loader imports), and the source goes. Saves about 2.2 MB of the 15 MB budget.
SOURCELESS_GLOBS = ("tencentcloud/*/v*/models.py",)


def make_sourceless(root: Path, cache_tag: str) -> list[Path]:
    """Replace each compiled module matching :data:`SOURCELESS_GLOBS` by its bytecode; returns them."""
    moved: list[Path] = []
    for pattern in SOURCELESS_GLOBS:
        for source in sorted(root.glob(pattern)):
            compiled = source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"
            if not compiled.is_file():  # not imported by any handler: left as source
                continue
            target = source.with_suffix(".pyc")
            compiled.replace(target)
            source.unlink()
            moved.append(target)
    return moved


def write_zip(source: Path, zip_path: Path, epoch: int = DEFAULT_EPOCH) -> tuple[int, int, int]:
    """Deterministic zip of ``source``'s files (sorted, one timestamp, fixed modes); returns (zipped bytes,
    unzipped bytes, files)."""
    import time

    date_time = time.gmtime(epoch)[:6]
    files = sorted(
        (p for p in source.rglob("*") if p.is_file()), key=lambda p: p.relative_to(source).as_posix()
    )
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = zip_path.with_suffix(".zip.tmp")
    unzipped = 0
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), date_time=date_time)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if path.suffix == ".so" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            info.create_system = 3  # Unix, so the mode bits are honoured
            data = path.read_bytes()
            unzipped += len(data)
            zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    tmp.replace(zip_path)
    return zip_path.stat().st_size, unzipped, len(files)


def check_contents(source: Path) -> None:
    """No dev-only code in the package."""
    tops = {p.name.split(".")[0].split("-")[0] for p in source.iterdir()}
    bad = sorted(t for t in tops if t in FORBIDDEN_TOP_LEVEL)
    if bad:
        raise SystemExit(f"dev-only code in the package: {bad}")


def sizes_by_top_level(source: Path) -> list[tuple[str, int]]:
    totals: dict[str, int] = {}
    for path in source.rglob("*"):
        if path.is_file():
            top = path.relative_to(source).parts[0]
            totals[top] = totals.get(top, 0) + path.stat().st_size
    return sorted(totals.items(), key=lambda kv: -kv[1])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", required=True, help="a CPython 3.10 interpreter (compiles the bytecode)")
    parser.add_argument("--out", type=Path, default=ROOT / "dist" / "cbsnap-scf.zip")
    parser.add_argument("--staging", type=Path, help="where to assemble (kept); default: next to --out")
    parser.add_argument("--bytecode", choices=("imported", "all", "none"), default="imported")
    parser.add_argument("--extra", action="append", default=[], help="optional extra to include (redis)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("-q", "--quiet", action="store_true")
    args = parser.parse_args(argv)

    tag = subprocess.run(  # noqa: S603 - the interpreter the caller named
        [args.python, "-I", "-S", "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if tag != PYTHON_VERSION:
        raise SystemExit(f"--python must be CPython {PYTHON_VERSION} (SCF's runtime), got {tag}")

    out: Path = args.out.resolve()
    staging: Path = (args.staging or out.with_name(out.stem)).resolve()
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    constraints = ROOT / "constraints.txt"
    pins = read_pins(constraints)
    requirements = pinned(runtime_requirements(ROOT / "pyproject.toml", args.extra), pins)

    with tempfile.TemporaryDirectory(prefix="cbsnap-deps-") as tmp:
        deps = Path(tmp) / "deps"
        pip_install(requirements, deps, constraints, args.quiet)
        installed = check_all_pinned(deps, pins)
        clean_dependencies(deps)
        shutil.copytree(deps, staging, dirs_exist_ok=True)
    handlers = copy_sources(staging)
    check_contents(staging)

    if args.bytecode == "none":
        compiled: list[Path] = []
    elif args.bytecode == "all":
        compiled = sorted(staging.rglob("*.py"))
    else:
        compiled = imported_files(args.python, staging, handlers)
    cache_tag = compile_bytecode(args.python, staging, compiled) if compiled else "-"
    sourceless = make_sourceless(staging, cache_tag) if compiled else []

    zipped, unzipped, count = write_zip(staging, out, source_date_epoch())
    largest = sizes_by_top_level(staging)[:8]
    summary = {
        "zip": str(out),
        "staging": str(staging),
        "sha256": hashlib.sha256(out.read_bytes()).hexdigest(),
        "zipped_bytes": zipped,
        "unzipped_bytes": unzipped,
        "files": count,
        "bytecode": args.bytecode,
        "compiled_modules": len(compiled),
        "sourceless_modules": [str(p.relative_to(staging)) for p in sourceless],
        "cache_tag": cache_tag,
        "handlers": handlers,
        "dependencies": installed,
        "largest": largest,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {out}")
        print(f"  sha256   {summary['sha256']}")
        print(f"  zipped   {zipped / MB:6.2f} MB")
        print(f"  unzipped {unzipped / MB:6.2f} MB in {count} files")
        print(f"  bytecode {args.bytecode}: {len(compiled)} modules ({cache_tag}, unchecked-hash)")
        print(f"  handlers {', '.join(handlers)}")
        print(f"  deps     {' '.join(installed)}")
        for name, size in largest:
            print(f"    {size / MB:6.2f} MB  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
