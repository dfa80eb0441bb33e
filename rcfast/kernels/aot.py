"""Ahead-of-time compiled ingest kernels: ``python -m rcfast.combine`` without Numba at run time.

On inputs of a few million lines the ingest step's fixed costs matter: importing Numba takes
~0.3 s and setting up its CPU target, which even loading a *cached* kernel needs, another
~0.4 s, before the first block is scanned (a third of a 1M-line run on two cores). So the JSON
scanner and the two string hashes of the ingest step are also compiled ahead of time with
``numba.pycc`` into a plain extension module: from the same Python functions as the JIT
kernels, hence the same results (``tests/test_combine_scanner.py`` checks both on the same
inputs). A run then imports the module in under a millisecond and never imports Numba.

The module is built once per machine, on first use (~25 s, like the first JIT compilation it
replaces), under ``$RCFAST_CACHE/aot`` (default ``~/.cache/rcfast/aot``). Its name carries a
hash of the kernels' source, the Python, Numba, llvmlite and numpy versions and the CPU: it is built
for the host CPU, as the JIT is, so a home directory shared by nodes of different CPU kinds
holds one module per kind. Building needs a C compiler and setuptools; if the build fails
(or a future Numba drops ``numba.pycc``, pending deprecation since 0.57), the error is
recorded beside it (``<name>.failed``: delete it to retry) and the JIT kernels are used, as
they are with ``RCFAST_AOT=0``.

``python -m rcfast.kernels.aot`` builds (or finds) the module and prints its path.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

MODULE = "rcfast_ingest_aot"
#: The kernel sources the module is compiled from (their bytes are part of its name).
_SOURCES = ("ingest_json.py", "ingest_hash.py", "strings.py", "nojit.py", "aot.py")
#: Exported kernels and their signatures. Inputs are C-contiguous (as the callers pass them);
#: outputs are declared with any layout, as the kernels return slices.
_SCAN_SIG = ("Tuple((i8, i8, i8[:], i8[:], i8[:], u1[:], i8[:], b1[:,:], i8[:,:], f8[:,:], "
             "u8[:], i4[:,:], u1[:,:], i8[:]))"
             "(u1[::1], u1[::1], i8[::1], u1[::1], i8[::1], u8[:,::1], u8[:,::1], i8)")
_HASH_SIG = "u8[:](i8[::1], u1[::1], b1[::1])"

_lock = threading.Lock()
_state: dict[str, Any] = {}


def enabled() -> bool:
    return os.environ.get("RCFAST_AOT", "1") != "0"


def cache_dir() -> Path:
    env = os.environ.get("RCFAST_CACHE")
    return (Path(env) if env else Path.home() / ".cache" / "rcfast") / "aot"


#: /proc/cpuinfo lines that differ between the cores (or over time) of one CPU kind
_PER_CORE = (b"processor", b"physical id", b"siblings", b"core id", b"cpu cores", b"apicid",
             b"initial apicid", b"cpu mhz", b"bogomips", b"clflush size")


def _cpu_signature() -> bytes:
    """The CPU kind, without importing llvmlite: on Linux the first core's /proc/cpuinfo entry
    without its per-core lines (x86 model and flags, ARM implementer, part and features, ...)."""
    sig = f"{platform.machine()} {platform.processor()}".encode()
    try:
        with open("/proc/cpuinfo", "rb") as f:
            first = f.read(1 << 16).split(b"\n\n", 1)[0]
    except OSError:
        return sig
    keep = [ln for ln in first.splitlines()
            if ln.strip() and not ln.lower().startswith(_PER_CORE)]
    return sig + b"\n" + b"\n".join(keep)


def _version_file(package: str) -> bytes:
    spec = importlib.util.find_spec(package)  # finds it without importing it
    if spec is None or spec.origin is None:
        return b"missing"
    path = Path(spec.origin).parent / "_version.py"
    return path.read_bytes() if path.exists() else spec.origin.encode()


def module_path() -> Path:
    """Where the module for this source, interpreter, Numba and CPU lives (built or not)."""
    h = hashlib.sha256()
    here = Path(__file__).resolve().parent
    for name in _SOURCES:
        h.update((here / name).read_bytes())
    for part in (sys.version.encode(), sysconfig.get_platform().encode(),
                 _version_file("numba"), _version_file("llvmlite"), _version_file("numpy"),
                 _cpu_signature()):
        h.update(part)
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return cache_dir() / f"{MODULE}-{h.hexdigest()[:16]}{suffix}"


def build(dest: Path | None = None) -> Path:
    """Compile the module into ``dest`` (default :func:`module_path`); atomic, so concurrent
    builders (array jobs on one home directory) at worst both build and one rename wins."""
    import warnings

    with warnings.catch_warnings():
        # numba.pycc is "pending deprecation" since Numba 0.57 (a replacement is being built);
        # if a Numba drops it, this import fails, once, and the JIT kernels are used
        warnings.simplefilter("ignore")
        import numba.pycc.compiler as pycc_compiler
        from numba.pycc import CC

    from rcfast.kernels import ingest_hash, ingest_json

    class _NoGilFlags(pycc_compiler.Flags):
        """pycc's wrappers keep the GIL; the kernels are ``nogil`` (the ingest step's block
        threads scan in parallel), so the compiled wrappers release it, as the JIT's do."""

        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    dest = dest or module_path()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".build-", dir=dest.parent))
    try:
        cc = CC(MODULE)
        cc.output_dir = str(tmp)
        cc.verbose = False
        cc.target_cpu = "host"  # as the JIT compiles; the CPU is part of the module's name
        cc.export("scan_jsonl", _SCAN_SIG)(ingest_json.scan_jsonl.py_func)
        cc.export("fnv_hash_strings", _HASH_SIG)(ingest_hash.fnv_hash_strings.py_func)
        cc.export("text_hash_strings", _HASH_SIG)(ingest_hash.text_hash_strings.py_func)
        cc.export("count_newlines", "i8(u1[::1])")(ingest_json.count_newlines.py_func)
        plain_flags = pycc_compiler.Flags
        pycc_compiler.Flags = _NoGilFlags
        try:
            cc.compile()
        finally:
            pycc_compiler.Flags = plain_flags
        built = next(p for p in tmp.iterdir() if p.name.startswith(MODULE))
        os.replace(built, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _import(path: Path) -> ModuleType:
    loader = importlib.machinery.ExtensionFileLoader(MODULE, str(path))
    spec = importlib.util.spec_from_file_location(MODULE, str(path), loader=loader)
    if spec is None:
        raise ImportError(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


def load() -> ModuleType | None:
    """The compiled module, built on first use; None when disabled or not buildable here."""
    with _lock:
        if "module" not in _state:
            _state["module"] = _load_or_build()
    return _state["module"]


def _load_or_build() -> ModuleType | None:
    if not enabled():
        return None
    try:
        path = module_path()
    except OSError:
        return None
    failed = path.with_name(path.name + ".failed")
    if failed.exists():
        return None
    if path.exists():
        try:
            return _import(path)
        except (ImportError, OSError) as exc:  # damaged or foreign: build it again, once
            print(f"rcfast: {path} does not load ({exc}); building it again", file=sys.stderr)
    print("rcfast: compiling the ingest kernels ahead of time, once per machine "
          f"(~25 s) -> {path}", file=sys.stderr)
    try:
        build(path)
        from rcfast._bytecode import ensure_compiled

        ensure_compiled(force=True)
        return _import(path)
    except Exception as exc:  # noqa: BLE001 - any build failure means: use the JIT
        try:
            failed.parent.mkdir(parents=True, exist_ok=True)
            failed.write_text(f"{type(exc).__name__}: {exc}\n")
        except OSError:
            pass
        print(f"rcfast: ahead-of-time build failed ({type(exc).__name__}: {exc}); using "
              f"Numba's JIT kernels (delete {failed} to retry)", file=sys.stderr)
        return None


# ------------------------------------------------------------------- kernels, AOT or JIT


def _string_hash(name: str, offsets: np.ndarray, data: np.ndarray,
                 valid: np.ndarray) -> np.ndarray:
    """The string hash kernel ``name`` of :mod:`rcfast.kernels.ingest_hash`, compiled ahead of
    time if it can be (same arguments, same result), else the JIT one."""
    args = (np.ascontiguousarray(offsets, dtype=np.int64),
            np.ascontiguousarray(data, dtype=np.uint8),
            np.ascontiguousarray(valid, dtype=np.bool_))
    mod = load()
    if mod is None:
        from rcfast.kernels import ingest_hash as mod
    return getattr(mod, name)(*args)


def fnv_hash_strings(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """:func:`rcfast.kernels.ingest_hash.fnv_hash_strings`, ahead of time if it can."""
    return _string_hash("fnv_hash_strings", offsets, data, valid)


def text_hash_strings(offsets: np.ndarray, data: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """:func:`rcfast.kernels.ingest_hash.text_hash_strings`, ahead of time if it can."""
    return _string_hash("text_hash_strings", offsets, data, valid)


def main(argv: list[str] | None = None) -> int:
    mod = load()
    if mod is None:
        print("no ahead-of-time module (disabled, or the build failed: see above)",
              file=sys.stderr)
        return 1
    print(mod.__file__)
    return 0


if __name__ == "__main__":
    sys.exit(main())
