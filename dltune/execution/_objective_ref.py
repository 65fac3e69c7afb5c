"""Objectives named by import path: how an objective reaches machines that import it."""

from __future__ import annotations

import importlib
import inspect
import json
import threading
from typing import TYPE_CHECKING
from typing import Any

if TYPE_CHECKING:
    from dltune._trial import Trial
    from dltune.study import Objective

__all__ = ["ObjectiveRef", "objective_ref"]


class ObjectiveRef:
    """An objective named by import path, built where it runs: how objectives reach Dask
    workers (every worker imports the module; no code is pickled).

    ``target`` names a factory, ``"package.module:factory"``; a worker calls
    ``factory(*args, **kwargs)`` once per process and optimize call, and uses what it returns
    as ``objective(trial) -> value``. The arguments must be JSON data (numbers, strings,
    booleans, None, lists, dicts), so the factory gets the same values wherever it runs.

    An ObjectiveRef is itself callable: it builds the objective on first use, so it works with
    every executor.

    Args:
        target: ``"package.module:factory"`` (the attribute may be dotted: ``"m:Class.make"``).
        *args: JSON-able positional arguments of the factory.
        **kwargs: JSON-able keyword arguments of the factory.

    Raises:
        TypeError: If ``target`` is not a string or an argument is not JSON data.
        ValueError: If ``target`` is not of the form ``"package.module:factory"``.

    Example:
        >>> ref = ObjectiveRef("mypackage.objectives:make_objective", "cifar10", epochs=3)
        >>> ref
        ObjectiveRef('mypackage.objectives:make_objective', 'cifar10', epochs=3)
        >>> ref.target, ref.args, ref.kwargs
        ('mypackage.objectives:make_objective', ('cifar10',), {'epochs': 3})
    """

    _is_factory = True

    def __init__(self, target: str, *args: Any, **kwargs: Any) -> None:
        _check_target(target)
        for i, arg in enumerate(args):
            _check_json(f"args[{i}]", arg)
        for key, value in kwargs.items():
            _check_json(f"kwargs[{key!r}]", value)
        self._target = target
        self._args = tuple(args)
        self._kwargs = dict(kwargs)
        self._objective: Objective | None = None
        self._lock = threading.Lock()

    @property
    def target(self) -> str:
        """``"package.module:factory"``."""
        return self._target

    @property
    def args(self) -> tuple[Any, ...]:
        """The factory's positional arguments."""
        return self._args

    @property
    def kwargs(self) -> dict[str, Any]:
        """The factory's keyword arguments (a copy)."""
        return dict(self._kwargs)

    def resolve(self) -> Objective:
        """Import the target and build a new objective (the target itself for a function).

        Raises:
            ImportError: If the module or the attribute cannot be imported here.
            TypeError: If the factory returns something that is not callable.
        """
        module_name, _, qualname = self._target.partition(":")
        try:
            found: Any = importlib.import_module(module_name)
        except ImportError as exc:
            raise ImportError(
                f"objective target {self._target!r}: cannot import module {module_name!r} "
                f"({exc}); install it (or put it on PYTHONPATH) wherever trials run"
            ) from exc
        for part in qualname.split("."):
            if not hasattr(found, part):
                raise ImportError(
                    f"objective target {self._target!r}: module {module_name!r} has no "
                    f"attribute {qualname!r}"
                )
            found = getattr(found, part)
        objective = found(*self._args, **self._kwargs) if self._is_factory else found
        if not callable(objective):
            raise TypeError(
                f"objective target {self._target!r} returned {objective!r}, which is not "
                "callable; the factory must return objective(trial) -> value"
            )
        result: Objective = objective
        return result

    def __call__(self, trial: Trial) -> Any:
        """Run the objective (built on the first call)."""
        with self._lock:
            if self._objective is None:
                self._objective = self.resolve()
            objective = self._objective
        return objective(trial)

    def __getstate__(self) -> dict[str, Any]:
        # Only the name and the data travel; the objective is built again where it runs.
        return {"target": self._target, "args": self._args, "kwargs": self._kwargs}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._target, self._args, self._kwargs = state["target"], state["args"], state["kwargs"]
        self._objective = None
        self._lock = threading.Lock()

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ObjectiveRef)
        return (self._target, self._args, self._kwargs) == (
            other._target,
            other._args,
            other._kwargs,
        )

    __hash__ = None  # type: ignore[assignment]  # equal by value, and the args may be lists

    def __repr__(self) -> str:
        parts = [repr(self._target), *map(repr, self._args)]
        parts += [f"{key}={value!r}" for key, value in self._kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"


class _FunctionRef(ObjectiveRef):
    """A module-level function shipped as ``"module:qualname"``: the target is the objective."""

    _is_factory = False


def _check_target(target: object) -> None:
    if not isinstance(target, str):
        raise TypeError(
            f"target={target!r} must be a string 'package.module:factory' naming the function "
            "that builds the objective"
        )
    module_name, colon, qualname = target.partition(":")
    names = [*module_name.split("."), *qualname.split(".")]
    if not colon or not all(name.isidentifier() for name in names):
        raise ValueError(
            f"target={target!r} is not an import path; use 'package.module:factory' (a module "
            "to import, a colon, then the factory's name in it)"
        )


def _check_json(where: str, value: object) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"ObjectiveRef {where}={value!r} is not JSON data ({exc}); pass numbers, strings, "
            "booleans, None, lists and dicts, and build anything else inside the factory"
        ) from None


def objective_ref(func: object) -> ObjectiveRef:
    """The ObjectiveRef that ships ``func`` to other machines by import path.

    Args:
        func: An :class:`ObjectiveRef` (returned as it is) or a module-level function of an
            importable module.

    Raises:
        TypeError: For a lambda, a nested function or closure, a function defined in
            ``__main__``, or any other callable object: none can be imported by a worker.

    Example:
        >>> import math
        >>> objective_ref(math.sqrt)
        Traceback (most recent call last):
            ...
        TypeError: the objective <built-in function sqrt> cannot be sent to Dask workers: ...
        >>> objective_ref(objective_ref).target
        'dltune.execution._objective_ref:objective_ref'
    """
    if isinstance(func, ObjectiveRef):
        return func
    how = (
        "Dask workers import the objective by its path; define it as a module-level function "
        "in a module every worker can import, or pass ObjectiveRef('package.module:factory', "
        "*args) whose factory builds it"
    )
    if not inspect.isfunction(func):
        raise TypeError(
            f"the objective {func!r} cannot be sent to Dask workers: only a module-level "
            f"function or an ObjectiveRef can; {how}"
        )
    module_name, qualname = func.__module__, func.__qualname__
    what = None
    if func.__name__ == "<lambda>":
        what = "is a lambda"
    elif "<locals>" in qualname:
        what = "is defined inside another function (a closure)"
    elif module_name in (None, "__main__", "__mp_main__"):
        what = "is defined in __main__ (the script being run), which workers cannot import"
    if what is not None:
        raise TypeError(f"the objective {func!r} {what}; {how}")
    ref = _FunctionRef(f"{module_name}:{qualname}")
    try:
        same = ref.resolve() is func
    except ImportError:
        same = False
    if not same:
        raise TypeError(
            f"the objective {func!r} is not importable as {ref.target!r} (it was replaced or "
            f"created at run time); {how}"
        )
    return ref
