"""AutoSampler's choice at scale: its space profile is kept up to date, not recomputed per ask,
and says what recomputing it says."""

from __future__ import annotations

import numpy as np

from dltune.samplers._auto import SpaceProfile
from dltune.samplers._auto import _FinishedSpace
from dltune.space import BaseDistribution
from dltune.space import CategoricalDistribution
from dltune.space import FloatDistribution
from dltune.space import IntDistribution
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

CHOICES: list[dict[str, BaseDistribution]] = [
    {"lr": FloatDistribution(1e-5, 1.0, log=True), "opt": CategoricalDistribution(("a", "b"))},
    {"lr": FloatDistribution(1e-5, 1.0, log=True)},
    {"lr": FloatDistribution(0.5, 0.5, log=True), "layers": IntDistribution(1, 8)},
    {"only": CategoricalDistribution(("x",)), "layers": IntDistribution(2, 2)},
    {},
]
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def test_kept_up_to_date_as_recomputed() -> None:
    rng = np.random.default_rng(0)
    trials: list[FrozenTrial] = []
    space = _FinishedSpace()
    for step in range(300):
        for _ in range(int(rng.integers(0, 3))):  # new trials start
            n = len(trials)
            dists = CHOICES[int(rng.integers(len(CHOICES)))]
            trials.append(FrozenTrial(n, 1000 + n, TrialState.RUNNING, distributions=dists))
        for i, trial in enumerate(trials):  # some finish, in any order (new records)
            if trial.state == TrialState.RUNNING and rng.random() < 0.2:
                state = FINISHED[int(rng.integers(3))]
                trials[i] = FrozenTrial(
                    trial.number, trial.trial_id, state, distributions=trial.distributions
                )
        seen = trials
        if step % 37 == 0 and trials:  # now and then, a view cut lower than before
            seen = trials[: int(rng.integers(len(trials)))]
        expected = (SpaceProfile.of(seen), sum(t.state.is_finished() for t in seen))
        assert space.update(seen) == expected, step
