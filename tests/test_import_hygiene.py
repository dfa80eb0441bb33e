"""Importing rcfast (and setting up its kernels) changes nothing global in the process."""

import json
import subprocess
import sys

import pytest

_PROBE = r"""
import gc, json, os, sys, types

env, meta = dict(os.environ), list(sys.meta_path)
before = dict(sys.modules)
{imports}
new = set(sys.modules) - set(before)
print(json.dumps({{
    "env_changed": sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)),
    "gc_enabled": gc.isenabled(),
    "gc_frozen": gc.get_freeze_count(),
    "meta_path_changed": [repr(h) for h in sys.meta_path if h not in meta],
    "not_modules": sorted(m for m in new if not isinstance(sys.modules[m], types.ModuleType)),
    "replaced": sorted(m for m in before if sys.modules.get(m) is not before[m]),
    "third_party": sorted({{m.split(".")[0] for m in new}} - set(sys.stdlib_module_names)),
}}))
"""


def _probe(imports: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(imports=imports)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def _assert_untouched(got: dict) -> None:
    assert got["env_changed"] == []
    assert got["gc_enabled"] is True and got["gc_frozen"] == 0
    assert got["meta_path_changed"] == []
    assert got["not_modules"] == []  # nothing hidden by a None entry (scipy.linalg, pandas)
    assert got["replaced"] == []


def test_import_rcfast_imports_only_rcfast():
    got = _probe("import rcfast")
    _assert_untouched(got)
    assert got["third_party"] == ["rcfast"]


@pytest.mark.parametrize("imports", [
    "import rcfast.kernels, rcfast.kernels.time, rcfast.kernels.strings\n"
    "rcfast.kernels.init_numba()",
    "import rcfast.combine, rcfast.ingest.pipeline, rcfast.ingest.formats, rcfast.resources",
    "import rcfast.errors, rcfast.schema, rcfast._cli",
])
def test_import_kernels_and_ingest_changes_nothing_global(imports):
    got = _probe(imports)
    _assert_untouched(got)
    # pandas and torch are optional extras: importing the library must not pull them in
    assert not {"pandas", "torch", "dask", "distributed"} & set(got["third_party"])
