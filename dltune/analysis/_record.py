"""The plain data record every plot is computed into before it is drawn.

A record holds only JSON-ready values (``str``, ``int``, ``float``, ``bool``, ``None``, lists
and dicts of them; NaN and infinities become ``None``), so one computation feeds the HTML
report, the live dashboard (sent as JSON) and a notebook, whichever library draws it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune.study import Study

__all__ = [
    "PlotRecord",
    "check_objective",
    "check_param_names",
    "finite_or_none",
    "objective_label",
    "objective_values",
    "unpack",
    "worker_of",
]


@dataclass(frozen=True, slots=True)
class PlotRecord:
    """One plot's data, before any drawing.

    Attributes:
        kind: Which plot it is (``"history"``, ``"learning_curves"``, ``"parallel"``,
            ``"slice"``, ``"contour"``, ``"importance"``, ``"optimizers"``, ``"timeline"``,
            ``"pareto"``); a renderer draws each kind its own way.
        title: A short human title.
        data: The plot's numbers and labels (JSON-ready; see the kind's builder).
        notes: Sentences a reader should see with the plot (what was left out and why).

    Example:
        >>> record = PlotRecord("history", "Optimization history", {"number": [0, 1]})
        >>> record.to_json()["kind"]
        'history'
    """

    kind: str
    title: str
    data: dict[str, Any]
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        """The record as one JSON-ready mapping."""
        return {
            "kind": self.kind,
            "title": self.title,
            "data": self.data,
            "notes": list(self.notes),
        }


def finite_or_none(value: float | None) -> float | None:
    """``value`` as a float, or ``None`` for ``None``, NaN and infinities (JSON has neither).

    Example:
        >>> finite_or_none(float("nan")) is None, finite_or_none(2)
        (True, 2.0)
    """
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def objective_values(trials: Sequence[FrozenTrial], objective: int = 0) -> list[FrozenTrial]:
    """The COMPLETE trials with a finite value for ``objective``, in number order."""
    out = []
    for trial in trials:
        if trial.state != TrialState.COMPLETE or trial.values is None:
            continue
        if objective < len(trial.values) and math.isfinite(trial.values[objective]):
            out.append(trial)
    return sorted(out, key=lambda t: t.number)


def objective_label(directions: Sequence[StudyDirection], objective: int = 0) -> str:
    """``"value"`` for one objective, else ``"value 0"``, ``"value 1"``, ...

    Example:
        >>> objective_label([StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE], 1)
        'value 1 (maximize)'
    """
    direction = directions[objective].name.lower()
    if len(directions) == 1:
        return f"value ({direction})"
    return f"value {objective} ({direction})"


def worker_of(trial: FrozenTrial) -> str:
    """The worker (``host:pid``) that ran ``trial``, or ``"-"`` when not recorded."""
    worker = trial.system_attrs.get("worker")
    return "-" if worker is None else str(worker)


def unpack(
    source: Study | Sequence[FrozenTrial],
    directions: Sequence[StudyDirection | str] | None = None,
) -> tuple[list[FrozenTrial], list[StudyDirection]]:
    """The trials and directions of a study, or of a list of trials and the given directions.

    Raises:
        ValueError: If trials come without ``directions`` (or a study with other ones).
        TypeError: If ``source`` is neither a study nor a sequence of :class:`FrozenTrial`.

    Example:
        >>> trials, directions = unpack([], ["maximize"])
        >>> directions
        [<StudyDirection.MAXIMIZE: 'MAXIMIZE'>]
    """
    if hasattr(source, "trials") and hasattr(source, "directions"):
        study_directions = list(source.directions)
        if directions is not None and [StudyDirection.parse(d) for d in directions] != (
            study_directions
        ):
            raise ValueError(
                f"directions={list(directions)!r} differ from the study's "
                f"{[d.name.lower() for d in study_directions]!r}; leave directions out"
            )
        return list(source.trials), study_directions
    if directions is None or len(directions) == 0:
        raise ValueError(
            "directions=None: with a list of trials, pass the study's directions, "
            "e.g. directions=['minimize']"
        )
    if isinstance(source, str | bytes) or not isinstance(source, Sequence):
        raise TypeError(
            f"source={source!r} is neither a study nor a list of FrozenTrial; "
            "pass study or study.trials (with directions)"
        )
    trials = list(source)
    for trial in trials:
        if not isinstance(trial, FrozenTrial):
            raise TypeError(
                f"source holds {trial!r}, not a FrozenTrial; pass study or study.trials"
            )
    return trials, [StudyDirection.parse(d) for d in directions]


def check_objective(
    objective: Any, directions: Sequence[StudyDirection], arg: str = "objective"
) -> int:
    """``objective`` as a valid index into ``directions`` (``arg`` names it in errors).

    Raises:
        TypeError: If it is not an int.
        ValueError: If it is out of range.

    Example:
        >>> check_objective(1, [StudyDirection.MINIMIZE, StudyDirection.MAXIMIZE])
        1
    """
    n = len(directions)
    if isinstance(objective, bool) or not isinstance(objective, int):
        raise TypeError(f"{arg}={objective!r} must be an int: an objective index in 0..{n - 1}")
    if not 0 <= objective < n:
        raise ValueError(
            f"{arg}={objective!r} is out of range: the study has {n} objective(s), "
            f"so use 0..{n - 1}"
        )
    return objective


def check_param_names(params: Any, known: Sequence[str]) -> list[str]:
    """``params`` as a list of known parameter names, each named once.

    Raises:
        TypeError: If it is not a list of str.
        ValueError: If it is empty, names an unknown parameter or one twice.

    Example:
        >>> check_param_names(("lr",), ["lr", "wd"])
        ['lr']
    """
    if isinstance(params, str) or not isinstance(params, Sequence):
        raise TypeError(f"params={params!r} must be a list of parameter names, e.g. ['lr']")
    names = list(params)
    for name in names:
        if not isinstance(name, str):
            raise TypeError(f"params={names!r} holds {name!r}, which is not a parameter name")
        if name not in known:
            raise ValueError(
                f"params={names!r} names the unknown parameter {name!r}; "
                f"known parameters: {list(known)!r}"
            )
    if not names:
        raise ValueError("params=[] is empty; name at least one parameter or pass params=None")
    if len(set(names)) != len(names):
        raise ValueError(f"params={names!r} names a parameter twice; name each once")
    return names
