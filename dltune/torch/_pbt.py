"""Population-based training (Jaderberg et al., 2017) over the trainer, inside a dltune study.

A population of members trains ``interval`` epochs at a time. Each such *segment* is one trial
of the study: its params are the member's hyperparameters for those epochs, it reports the
metric at the real epoch numbers, and its system attribute ``pbt`` says which member and
generation it is and whose checkpoint it started from. Before a member's next segment, the
members that finished the previous generation are ranked by the task's metric (read from the
storage); a member in the bottom ``fraction`` copies the weights, optimizer and schedule state
of a member of the top ``fraction`` (exploit) and perturbs its learning rate, momentum (or
beta1) and weight decay (explore). Workers coordinate only through the storage and the
checkpoint files, so ``n_jobs`` local processes (or any storage-sharing workers) can run it.

The result is a hyperparameter *schedule*: the segments along the best final member's ancestry.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Any

import numpy as np

from dltune.exceptions import TrialPruned
from dltune.pruners import NopPruner
from dltune.samplers import RandomSampler
from dltune.space import FloatDistribution
from dltune.study import create_study
from dltune.torch._hparams import HParams
from dltune.torch._objective import HPARAMS_KEY
from dltune.torch._objective import SEED_KEY
from dltune.torch._objective import _owner
from dltune.torch._objective import checkpoint_path
from dltune.torch._pbt_explore import DEFAULT_BOUNDS
from dltune.torch._pbt_explore import check_bounds
from dltune.torch._pbt_explore import explore
from dltune.torch._pbt_explore import perturbed_fields
from dltune.torch._pbt_explore import truncation
from dltune.torch._pbt_replay import schedule_to_json
from dltune.torch._pbt_result import CONFIG_KEY
from dltune.torch._pbt_result import PBT_KEY
from dltune.torch._pbt_result import SCHEDULE_KEY
from dltune.torch._pbt_result import PBTResult
from dltune.torch._pbt_result import collect
from dltune.torch._pbt_result import hparams_of
from dltune.torch._pbt_result import member_of
from dltune.torch._task import Task
from dltune.torch._trainer import MUTABLE_FIELDS
from dltune.torch._trainer import train
from dltune.trial import FrozenTrial
from dltune.trial import TrialState

if TYPE_CHECKING:
    from dltune._trial import Trial
    from dltune.storage import BaseStorage
    from dltune.study import Study

__all__ = ["PBT", "PBT_KEY", "SCHEDULE_KEY", "PBTResult"]

_logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.1

SpaceFn = Callable[["Trial"], Mapping[str, Any]]


def _positive_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}={value!r} must be an integer >= {low}")
    return value


class PBT:
    """Population-based training of a :class:`~dltune.torch.Task`.

    Args:
        task: What to train; ``task.epochs`` is each member's total and ``task.checkpoint_dir``
            (required) is where members hand weights over.
        space: Where the initial hyperparameters come from: a callable ``space(trial) -> dict``
            of :class:`HParams` fields (or a ``SearchSpace``), drawn at random (seeded), or a
            list of :class:`HParams`, one per member.
        population: Members (>= 2); defaults to 8, or the length of a list ``space``.
        interval: Epochs per segment, between two exploit/explore steps (>= 1, below
            ``task.epochs``).
        fraction: The bottom and top fractions of truncation selection, in ``(0, 0.5]``.
        perturb: The fields explore changes (momentum only for SGD/RMSprop, beta1/beta2 only
            for the Adam family), from ``lr, momentum, beta1, beta2, weight_decay``.
        factors: Explore multiplies a field by one of these (positive numbers).
        resample_probability: The chance, per field, of a fresh draw from its range instead.
        bounds: ``name -> (low, high)``: where perturbed values are clipped and resampled.
            Without it, a field's range is the search space's float range for it, else
            :data:`DEFAULT_BOUNDS`.
        fixed: Hyperparameters under those of the space (a callable ``space`` only).
        seed: Seeds the initial draw, the members' training and every exploit/explore decision.

    Raises:
        TypeError: For a ``task`` that is not a Task or a ``space`` of another kind.
        ValueError: For an argument out of its range, naming it and what is accepted.

    Example:
        >>> import tempfile
        >>> from dltune.torch import HParams, Task
        >>> task = Task(epochs=2, checkpoint_dir=tempfile.mkdtemp())
        >>> members = [HParams(lr=0.01, width=16), HParams(lr=0.001, width=16)]
        >>> result = PBT(task, members, interval=1, seed=0).run()
        >>> [start for start, _ in result.schedule][0], result.epochs_trained
        (0, 4)
    """

    def __init__(
        self,
        task: Task,
        space: SpaceFn | Sequence[HParams] | Any,
        *,
        population: int | None = None,
        interval: int = 1,
        fraction: float = 0.25,
        perturb: Sequence[str] = ("lr", "momentum", "beta1", "weight_decay"),
        factors: Sequence[float] = (0.8, 1.2),
        resample_probability: float = 0.25,
        bounds: Mapping[str, Sequence[float]] | None = None,
        fixed: Mapping[str, Any] | None = None,
        seed: int = 0,
    ) -> None:
        if not isinstance(task, Task):
            raise TypeError(f"task={task!r} must be a dltune.torch.Task")
        if task.checkpoint_dir is None:
            raise ValueError(
                "task.checkpoint_dir=None, but PBT hands weights between members through "
                "checkpoint files; give task a checkpoint_dir"
            )
        self.task = task
        self.initial: list[HParams] | None = None
        if isinstance(space, Sequence) and not isinstance(space, str | bytes):
            if not space or not all(isinstance(h, HParams) for h in space):
                raise TypeError(f"space={space!r} must be a non-empty list of HParams")
            self.initial = list(space)
            if population is None:
                population = len(self.initial)
            elif population != len(self.initial):
                raise ValueError(
                    f"population={population!r} but space lists {len(self.initial)} HParams; "
                    "give one HParams per member or leave population out"
                )
        elif not (callable(space) or callable(getattr(space, "suggest", None))):
            raise TypeError(
                f"space={space!r} must be a callable space(trial) -> dict, a SearchSpace or a "
                "list of HParams"
            )
        self.space = space
        self.population = _positive_int("population", 8 if population is None else population, 2)
        self.interval = _positive_int("interval", interval, 1)
        if self.interval >= task.epochs:
            raise ValueError(
                f"interval={interval!r} must be below task.epochs={task.epochs}, so that members "
                "exploit and explore at least once"
            )
        if isinstance(fraction, bool) or not isinstance(fraction, int | float):
            raise ValueError(f"fraction={fraction!r} must be a number in (0, 0.5]")
        if not 0 < fraction <= 0.5:
            raise ValueError(f"fraction={fraction!r} must be in (0, 0.5]")
        self.fraction = float(fraction)
        if isinstance(perturb, str) or not all(name in MUTABLE_FIELDS for name in perturb):
            raise ValueError(
                f"perturb={perturb!r} must list fields from {', '.join(MUTABLE_FIELDS)}"
            )
        self.perturb = tuple(perturb)
        if not factors or not all(
            isinstance(f, int | float) and not isinstance(f, bool) and 0 < f < math.inf
            for f in factors
        ):
            raise ValueError(f"factors={factors!r} must be a non-empty list of numbers > 0")
        self.factors = tuple(float(f) for f in factors)
        if isinstance(resample_probability, bool) or not (
            isinstance(resample_probability, int | float) and 0 <= resample_probability <= 1
        ):
            raise ValueError(f"resample_probability={resample_probability!r} must be in [0, 1]")
        self.resample_probability = float(resample_probability)
        self.bounds = check_bounds(bounds)
        self.fixed = dict(fixed or {})
        if self.fixed and self.initial is not None:
            raise ValueError(f"fixed={self.fixed!r} applies to a callable space, not to HParams")
        HParams.from_params({}, **self.fixed)  # fail now, not in the first segment
        if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed={seed!r} must be an integer >= 0")
        self.seed = seed
        for i, hp in enumerate(self.initial or []):
            for name in perturbed_fields(hp, self.perturb, {}):
                dist = self._bound(name, {})
                if not dist.contains(getattr(hp, name)):
                    raise ValueError(
                        f"space[{i}].{name}={getattr(hp, name)!r} is outside [{dist.low}, "
                        f"{dist.high}]; widen bounds={{{name!r}: (low, high)}}"
                    )

    @property
    def generations(self) -> int:
        """Segments per member: ``ceil(task.epochs / interval)``."""
        return math.ceil(self.task.epochs / self.interval)

    def _bound(self, name: str, distributions: Mapping[str, Any]) -> FloatDistribution:
        if name in self.bounds:
            return self.bounds[name]
        dist = distributions.get(name)
        return dist if isinstance(dist, FloatDistribution) else DEFAULT_BOUNDS[name]

    def run(
        self,
        *,
        storage: str | BaseStorage | None = None,
        study_name: str | None = None,
        n_jobs: int = 1,
        timeout: float | None = None,
    ) -> PBTResult:
        """Train the population; record every segment and the best schedule in a new study.

        Args:
            storage: The study's storage (a URL such as ``sqlite:///pbt.db``, a storage, or
                ``None`` for memory; local worker processes share an in-memory one through
                this process).
            study_name: The new study's name (generated when ``None``).
            n_jobs: Local worker processes (1 trains here); each uses one torch thread unless
                ``task.threads`` says otherwise.
            timeout: Start no segment after this many seconds (running ones finish, so a run
                may overrun by up to one segment); segments never started are failed with the
                reason.

        Returns:
            The best member's value and schedule, every member's history, the cost.

        Raises:
            ValueError: For ``n_jobs`` below 1 or a non-positive ``timeout``.
            DuplicatedStudyError: If ``study_name`` exists in ``storage``.
            RuntimeError: If no segment completed (the first failure's reason is given).
        """
        _positive_int("n_jobs", n_jobs, 1)
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ValueError(f"timeout={timeout!r} must be a number of seconds > 0, or None")
        started = time.perf_counter()
        task = self.task
        if n_jobs > 1 and task.threads is None:
            task = dataclasses.replace(task, threads=1)
        study = create_study(
            study_name,
            storage,
            direction=task.direction,
            sampler=RandomSampler(seed=self.seed),
            pruner=NopPruner(),
        )
        study.set_system_attr(CONFIG_KEY, self._config())
        for generation in range(self.generations):
            for member in range(self.population):
                template = FrozenTrial(
                    number=-1,
                    trial_id=-1,
                    state=TrialState.WAITING,
                    system_attrs={PBT_KEY: {"member": member, "generation": generation}},
                )
                study._storage.create_new_trial(study._study_id, template)
        deadline = None if timeout is None else time.time() + float(timeout)
        segment = _Segment(self, task, deadline)
        study.optimize(
            segment, n_trials=self.population * self.generations, timeout=timeout, n_jobs=n_jobs
        )
        for left in study.get_trials(states=(TrialState.WAITING,)):
            study._storage.set_trial_state_values(
                left.trial_id, TrialState.FAIL, reason="not started: the PBT timeout passed"
            )
        result = collect(
            study,
            interval=self.interval,
            epochs=task.epochs,
            maximize=task.direction == "maximize",
            seconds=time.perf_counter() - started,
        )
        study.set_system_attr(SCHEDULE_KEY, schedule_to_json(result.schedule))
        if not task.keep_checkpoints:
            for t in study.get_trials():
                path = checkpoint_path(task, study.study_name, t.number)
                if path is not None:
                    with contextlib.suppress(FileNotFoundError):
                        path.unlink()
        return result

    def _config(self) -> dict[str, Any]:
        return {
            "population": self.population,
            "interval": self.interval,
            "epochs": self.task.epochs,
            "fraction": self.fraction,
            "perturb": list(self.perturb),
            "factors": list(self.factors),
            "resample_probability": self.resample_probability,
            "seed": self.seed,
        }


class _Segment:
    """The objective: one trial trains one member's next ``interval`` epochs."""

    def __init__(self, pbt: PBT, task: Task, deadline: float | None) -> None:
        self.pbt = pbt
        self.task = task
        self.deadline = deadline

    def __call__(self, trial: Trial) -> float:
        info = trial.system_attrs.get(PBT_KEY)
        if not isinstance(info, dict) or "generation" not in info:
            raise RuntimeError(f"trial {trial.number} is not a PBT segment (no {PBT_KEY!r} attr)")
        member, generation = int(info["member"]), int(info["generation"])
        pbt, study = self.pbt, trial.study
        start = generation * pbt.interval
        end = min(start + pbt.interval, self.task.epochs)
        source: FrozenTrial | None = None
        if generation == 0:
            hparams = self._initial(trial, member)
        else:
            source, hparams = self._exploit_explore(study, member, generation)
            self._record(trial, source, hparams)
        exploited = source is not None and member_of(source) != member
        trial.set_system_attr(
            PBT_KEY,
            {
                **info,
                "start_epoch": start,
                "end_epoch": end,
                "parent_member": None if source is None else member_of(source),
                "parent_trial": None if source is None else source.number,
                "exploited": exploited,
            },
        )
        trial.set_system_attr(HPARAMS_KEY, hparams.to_dict())
        seed = int(np.random.SeedSequence([pbt.seed, member, generation]).generate_state(1)[0])
        trial.set_system_attr(SEED_KEY, seed)
        name = study.study_name
        result = train(
            self.task,
            hparams,
            seed=seed,
            trial=trial,
            checkpoint=checkpoint_path(self.task, name, trial.number),
            owner=_owner(name, trial._frozen()),
            start_from=None if source is None else checkpoint_path(self.task, name, source.number),
            start_owner=None if source is None else _owner(name, source),
            epochs_to=end,
        )
        trial.set_user_attr(
            "metrics",
            {
                "val_accuracy": result.val_accuracy,
                "val_loss": result.val_loss,
                "train_loss": result.history[-1].train_loss,
                "epochs": end - start,
                "seconds": round(result.seconds, 3),
            },
        )
        return result.value

    def _initial(self, trial: Trial, member: int) -> HParams:
        pbt = self.pbt
        if pbt.initial is not None:
            hparams = pbt.initial[member]
            self._suggest_fields(trial, hparams, perturbed_fields(hparams, pbt.perturb, {}))
            return hparams
        return HParams.from_params(dict(self._space(trial)), **pbt.fixed)

    def _space(self, trial: Trial) -> Mapping[str, Any]:
        space: Any = self.pbt.space  # a callable or a SearchSpace, checked by PBT
        return space.suggest(trial) if hasattr(space, "suggest") else space(trial)  # type: ignore[no-any-return]

    def _suggest_fields(self, trial: Trial, hparams: HParams, fields: Sequence[str]) -> None:
        """Record the perturbable fields of a list-given member as the trial's params."""
        for name in fields:
            dist = self.pbt._bound(name, {})
            trial._fixed[name] = getattr(hparams, name)
            trial.suggest_float(name, dist.low, dist.high, log=dist.log)

    def _record(self, trial: Trial, source: FrozenTrial, hparams: HParams) -> None:
        """Record ``hparams`` as the trial's params, through the same suggest calls as the source
        trial (the space, with every value fixed), so the study reads like any other."""
        pbt = self.pbt
        if pbt.initial is not None:
            self._suggest_fields(trial, hparams, perturbed_fields(hparams, pbt.perturb, {}))
            return
        trial._fixed.update(source.params)
        trial._fixed.update({k: getattr(hparams, k) for k in MUTABLE_FIELDS if k in source.params})
        self._space(trial)

    def _exploit_explore(
        self, study: Study, member: int, generation: int
    ) -> tuple[FrozenTrial, HParams]:
        """Rank the members that finished the previous generation; copy a top one if this
        member is in the bottom (or its own segment did not complete), then explore."""
        pbt = self.pbt
        own, peers = self._wait(study, member, generation - 1)
        maximize = self.task.direction == "maximize"
        values = {m: float(t.values[0]) for m, t in peers.items() if t.values}
        bottom, top = truncation(values, maximize=maximize, fraction=pbt.fraction)
        rng = np.random.default_rng([pbt.seed, member, generation])
        lost = own.state != TrialState.COMPLETE
        if not (lost or member in bottom):
            return own, hparams_of(own)
        candidates = [m for m in top if m != member]
        if not candidates:
            raise TrialPruned(
                f"member {member} has nothing to continue from: its generation "
                f"{generation - 1} ended {own.state.name} and no other member completed it"
            )
        source = peers[candidates[int(rng.integers(len(candidates)))]]
        copied = hparams_of(source)
        fields = perturbed_fields(copied, pbt.perturb, source.distributions)
        bounds = {name: pbt._bound(name, source.distributions) for name in fields}
        new = explore(
            copied,
            fields,
            bounds,
            rng,
            factors=pbt.factors,
            resample_probability=pbt.resample_probability,
        )
        _logger.info(
            "member %d copies member %d at epoch %d: %s",
            member,
            member_of(source),
            generation * pbt.interval,
            {k: getattr(new, k) for k in fields},
        )
        return source, new

    def _wait(
        self, study: Study, member: int, generation: int
    ) -> tuple[FrozenTrial, dict[int, FrozenTrial]]:
        """Wait until this member's segment of ``generation`` has finished (and, if it did not
        complete, until another member's has or all have); return it and the completed ones."""
        while True:
            segments = [
                t
                for t in study.get_trials()
                if isinstance(t.system_attrs.get(PBT_KEY), dict)
                and t.system_attrs[PBT_KEY].get("generation") == generation
            ]
            own = next((t for t in segments if member_of(t) == member), None)
            if own is None:
                raise RuntimeError(
                    f"study {study.study_name!r} has no segment of member {member} at "
                    f"generation {generation}; was it made by PBT.run?"
                )
            done = {member_of(t): t for t in segments if t.state == TrialState.COMPLETE}
            if own is not None and own.state.is_finished():
                if own.state == TrialState.COMPLETE or len(done) > 0:
                    return own, done
                if all(t.state.is_finished() for t in segments):
                    return own, done
            if self.deadline is not None and time.time() > self.deadline:
                raise TrialPruned(
                    f"the PBT timeout passed while member {member} waited for generation "
                    f"{generation}"
                )
            time.sleep(_POLL_SECONDS)
