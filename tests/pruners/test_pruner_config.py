"""The pruners by name in a ``dltune tune`` config: built from their keys, refused clearly."""

from __future__ import annotations

from typing import Any

import pytest

from dltune.config import ConfigError
from dltune.config import parse_config
from dltune.pruners import PRUNERS
from dltune.pruners import HyperbandPruner
from dltune.pruners import MedianPruner
from dltune.pruners import PatientPruner
from dltune.pruners import SuccessiveHalvingPruner
from dltune.pruners import ThresholdPruner

BASE: dict[str, Any] = {
    "study": "s",
    "seed": 7,
    "budget": {"trials": 2},
    "task": {"dataset": "digits", "model": "mlp", "epochs": 30},
    "space": {"width": 16},
}


def _config(pruner: Any) -> Any:
    return parse_config({**BASE, "pruner": pruner})


def test_registered_names() -> None:
    assert PRUNERS.get("asha") is SuccessiveHalvingPruner
    assert PRUNERS.get("SHA") is SuccessiveHalvingPruner
    assert PRUNERS.get("successive-halving") is SuccessiveHalvingPruner
    assert PRUNERS.get("hyperband") is HyperbandPruner
    assert PRUNERS.get("threshold") is ThresholdPruner
    assert isinstance(PRUNERS.get("patient")(patience=2), PatientPruner)


def test_asha_from_the_issue() -> None:
    config = _config({"type": "asha", "min_resource": 1, "reduction_factor": 3})
    assert config.pruner.type == "successive_halving"
    pruner = config.build_pruner()
    assert isinstance(pruner, SuccessiveHalvingPruner)
    assert pruner.rungs(up_to=27) == [1, 3, 9, 27]
    assert pruner.reduction_factor == 3


def test_hyperband_gets_the_config_seed() -> None:
    pruner = _config({"type": "hyperband", "max_resource": 27}).build_pruner()
    assert isinstance(pruner, HyperbandPruner)
    assert pruner.n_brackets == 4
    seeded = HyperbandPruner(max_resource=27, seed=7)
    assert [pruner.bracket_of(n) for n in range(50)] == [seeded.bracket_of(n) for n in range(50)]
    own = _config({"type": "hyperband", "max_resource": 27, "seed": 1}).build_pruner()
    assert isinstance(own, HyperbandPruner)
    other = HyperbandPruner(max_resource=27, seed=1)
    assert [own.bracket_of(n) for n in range(50)] == [other.bracket_of(n) for n in range(50)]


def test_threshold_and_patient() -> None:
    pruner = _config({"type": "threshold", "upper": 5.0, "max_seconds": 60}).build_pruner()
    assert isinstance(pruner, ThresholdPruner)
    config = _config(
        {"type": "patient", "patience": 3, "wrapped": {"type": "median", "n_startup_trials": 2}}
    )
    patient = config.build_pruner()
    assert isinstance(patient, PatientPruner)
    assert isinstance(patient.wrapped, MedianPruner)
    alone = _config({"type": "patient", "patience": 3, "min_delta": 0.01}).build_pruner()
    assert isinstance(alone, PatientPruner) and alone.wrapped is None


@pytest.mark.parametrize(
    ("pruner", "match"),
    [
        (
            {"type": "asha", "reduction_factor": 1},
            r"pruner\.reduction_factor: must be >= 2 \(got 1; ",
        ),
        (
            {"type": "asha", "eta": 3},
            r"pruner\.eta: unknown key 'eta' \(got 3; accepted keys: min_resource, reduction_f",
        ),
        ({"type": "asha", "min_resource": "1"}, r"pruner\.min_resource: must be an int \(got '1'"),
        (
            {"type": "asha", "objective": "pareto"},
            r"pruner\.objective: is not valid \(got 'pareto'; use an objective index",
        ),
        (
            {"type": "hyperband", "max_resource": 3, "min_resource": 9},
            r"pruner\.max_resource: must be >= min_resource=9 \(got 3",
        ),
        ({"type": "threshold"}, r"ThresholdPruner needs lower, upper or max_seconds"),
        (
            {"type": "threshold", "upper": 1.0, "objective": "rank"},
            r"pruner\.objective: is not valid \(got 'rank'; use an objective index",
        ),
        ({"type": "patient"}, r"pruner\.patience: required by the patient pruner \(missing"),
        (
            {"type": "patient", "patience": 2, "wrapped": {"type": "medain"}},
            r"pruner\.wrapped: is refused: unknown pruner 'medain'",
        ),
        ({"type": "hyperbnad"}, r"unknown pruner 'hyperbnad', did you mean 'hyperband'"),
    ],
)
def test_bad_pruner_sections(pruner: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        _config(pruner)
