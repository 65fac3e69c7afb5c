"""Fault injection 8: nothing dltune stores is ever unpickled.

An AST scan of ``dltune/`` finds every use of a loader that can run code from its input:
``pickle``/``cloudpickle``/``dill`` loads and Unpicklers, ``marshal``, ``shelve``, ``joblib``,
``pandas.read_pickle``, unsafe YAML loaders, ``numpy.load(..., allow_pickle=True)`` and any
``torch.load`` without a literal ``weights_only=True``, however they are imported (aliases,
``from`` imports) and whether they are called or passed along as a callable.

The few sites allowed load bytes that never touch storage: what one dltune process hands to
another it started (the local executor's job and error blobs, retraining jobs) and in-process
round trips of the conformance suites. They are listed one by one (file, enclosing function,
loader), so a new site fails this test until someone decides about it. (Dask ships its task
arguments with its own serialization; the Dask executor loads nothing itself.)
Limits: dynamic lookups (``getattr(pickle, name)``, ``importlib``) are not followed.
"""

from __future__ import annotations

import ast
import functools
from collections import Counter
from pathlib import Path

import dltune

PACKAGE = Path(dltune.__file__).parent
ROOT = PACKAGE.parent

#: Loaders that run code hidden in what they load (or can be told to).
UNSAFE = frozenset(
    {
        "pickle.load",
        "pickle.loads",
        "pickle.Unpickler",
        "_pickle.load",
        "_pickle.loads",
        "_pickle.Unpickler",
        "cloudpickle.load",
        "cloudpickle.loads",
        "dill.load",
        "dill.loads",
        "joblib.load",
        "marshal.load",
        "marshal.loads",
        "shelve.open",
        "pandas.read_pickle",
        "yaml.load",
        "yaml.load_all",
        "yaml.unsafe_load",
        "yaml.unsafe_load_all",
        "yaml.full_load",
        "yaml.full_load_all",
        "yaml.Loader",
        "yaml.UnsafeLoader",
        "yaml.FullLoader",
    }
)

#: (file, enclosing function, loader) -> why it never loads stored data. Keep it short.
ALLOWED = {
    ("dltune/execution/_child.py", "main", "cloudpickle.loads"): (
        "the job the parent LocalExecutor sends its child over an authenticated AF_UNIX socket"
    ),
    ("dltune/execution/_local.py", "_load_error", "cloudpickle.loads"): (
        "a child worker's exception, sent back to its parent over that socket"
    ),
    ("dltune/torch/_retrain.py", "_run", "cloudpickle.loads"): (
        "a retraining run's arguments, from the parent over its ProcessPoolExecutor"
    ),
    ("dltune/torch/_retrain.py", "retrain_top_k", "cloudpickle.loads"): (
        "a retraining run's result, from the worker process the parent started"
    ),
    (
        "dltune/testing/_sampler.py",
        "SamplerConformance.test_picklable_copy_behaves_the_same",
        "cloudpickle.loads",
    ): "an in-process copy of a sampler just dumped (the conformance suite)",
    (
        "dltune/testing/_pruner.py",
        "PrunerConformance.test_picklable_copy_decides_the_same",
        "cloudpickle.loads",
    ): "an in-process copy of a pruner just dumped (the conformance suite)",
    ("dltune/config/_yaml.py", "read_yaml", "yaml.load"): (
        "Loader=ConfigLoader, a yaml.SafeLoader (test_config_loader_is_a_safe_loader)"
    ),
}

Site = tuple[str, str, str]


class _Scanner(ast.NodeVisitor):
    """Collects ``(function, loader, line)`` for every unsafe loader a module uses."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # local name -> dotted module path
        self.scope: list[str] = []
        self.found: list[tuple[str, str, int]] = []
        self._calls: dict[int, ast.Call] = {}  # id(func expression) -> its call

    def scan(self, tree: ast.Module) -> list[tuple[str, str, int]]:
        for node in ast.walk(tree):  # imports first, wherever they are (function-local too)
            if isinstance(node, ast.Import):
                for alias in node.names:
                    head = alias.name.split(".")[0]
                    self.names[alias.asname or head] = alias.name if alias.asname else head
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
            elif isinstance(node, ast.Call):
                self._calls[id(node.func)] = node
        self.visit(tree)
        return self.found

    def _qualified(self, node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return self.names.get(node.id)
        if isinstance(node, ast.Attribute):
            base = self._qualified(node.value)
            return None if base is None else f"{base}.{node.attr}"
        return None

    def _scoped(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        self.scope.append(node.name)
        self.generic_visit(node)
        self.scope.pop()

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _scoped  # noqa: N815

    def _reference(self, node: ast.Name | ast.Attribute) -> None:
        name = self._qualified(node)
        if name is not None and self._is_unsafe(name, self._calls.get(id(node))):
            self.found.append((".".join(self.scope) or "<module>", name, node.lineno))
        elif isinstance(node, ast.Attribute):
            self.generic_visit(node)

    visit_Name = visit_Attribute = _reference  # noqa: N815

    @staticmethod
    def _is_unsafe(name: str, call: ast.Call | None) -> bool:
        if name in UNSAFE:
            return True
        keywords = {} if call is None else {k.arg: k.value for k in call.keywords}
        if name == "torch.load":  # safe only as a call with a literal weights_only=True
            flag = keywords.get("weights_only")
            return not (isinstance(flag, ast.Constant) and flag.value is True)
        if name == "numpy.load" and "allow_pickle" in keywords:  # numpy's default is safe
            flag = keywords["allow_pickle"]
            return not (isinstance(flag, ast.Constant) and flag.value is False)
        return False


def scan_source(source: str) -> list[tuple[str, str, int]]:
    """``(enclosing function, loader, line)`` of each unsafe loader used in ``source``."""
    return _Scanner().scan(ast.parse(source))


@functools.lru_cache(maxsize=1)
def scan_package() -> dict[Site, list[int]]:
    """Every unsafe loader used in ``dltune/``: ``(file, function, loader) -> lines``."""
    sites: dict[Site, list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(ROOT).as_posix()
        for function, name, line in scan_source(path.read_text(encoding="utf-8")):
            sites.setdefault((relative, function, name), []).append(line)
    return sites


def test_nothing_unpickles_outside_the_allowed_sites() -> None:
    sites = scan_package()
    new = {site: lines for site, lines in sites.items() if site not in ALLOWED}
    listed = "\n".join(f"  {s[0]}:{lines} in {s[1]}: {s[2]}" for s, lines in sorted(new.items()))
    assert not new, (
        "loaders that can run code from their input, outside the allowed sites:\n"
        f"{listed}\nload stored data with json or torch.load(..., weights_only=True); if the "
        "bytes never touch storage, add the site to ALLOWED with the reason"
    )
    assert all(len(lines) == 1 for lines in sites.values()), sites  # one call per allowed site


def test_every_allowed_site_is_still_there() -> None:
    gone = sorted(set(ALLOWED) - set(scan_package()))
    assert not gone, f"remove these from ALLOWED, they no longer exist: {gone}"


def test_config_loader_is_a_safe_loader() -> None:
    import yaml

    from dltune.config._yaml import ConfigLoader

    assert issubclass(ConfigLoader, yaml.SafeLoader)


def test_the_scanner_finds_every_form() -> None:
    source = """
import pickle
import pickle as p
import numpy as np
import torch
import yaml
from cloudpickle import loads
from torch import load as tload
from marshal import loads as mloads

def a(blob):
    return pickle.loads(blob)

class B:
    def c(self, f):
        return p.load(f), loads(b""), mloads(b""), yaml.unsafe_load("x")

def d(path):
    torch.load(path)
    torch.load(path, weights_only=False)
    tload(path, weights_only=flag)
    np.load(path, allow_pickle=True)
    return list(map(pickle.loads, [b""])), pickle.Unpickler

def safe(path, text):
    torch.load(path, map_location="cpu", weights_only=True)
    tload(path, weights_only=True)
    np.load(path)
    np.load(path, allow_pickle=False)
    pickle.dumps(1)
    yaml.safe_load(text)
    return pickle.HIGHEST_PROTOCOL
"""
    found = Counter((function, name) for function, name, _ in scan_source(source))
    assert found == Counter(
        {
            ("a", "pickle.loads"): 1,
            ("B.c", "pickle.load"): 1,
            ("B.c", "cloudpickle.loads"): 1,
            ("B.c", "marshal.loads"): 1,
            ("B.c", "yaml.unsafe_load"): 1,
            ("d", "torch.load"): 3,
            ("d", "numpy.load"): 1,
            ("d", "pickle.loads"): 1,
            ("d", "pickle.Unpickler"): 1,
        }
    )
