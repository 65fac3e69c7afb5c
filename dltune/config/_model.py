"""The config's sections as pydantic models; ``parse_config`` and ``load_config``."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import PrivateAttr
from pydantic import ValidationError
from pydantic import ValidationInfo
from pydantic import field_validator
from pydantic import model_validator

from dltune.config._errors import ConfigError
from dltune.config._errors import Problem
from dltune.config._errors import ProblemLog
from dltune.config._errors import Problems
from dltune.config._parse import parse_space
from dltune.config._plugins import build_plugin
from dltune.config._plugins import check_plugin
from dltune.config._space import SearchSpace
from dltune.config._translate import translate
from dltune.config._yaml import read_yaml
from dltune.pruners import PRUNERS
from dltune.samplers import SAMPLERS

if TYPE_CHECKING:
    from dltune.pruners import BasePruner
    from dltune.samplers import BaseSampler
    from dltune.torch import Task

__all__ = [
    "BudgetConfig",
    "GuardsConfig",
    "LRFindConfig",
    "PluginConfig",
    "RetrainConfig",
    "TaskConfig",
    "TuneConfig",
    "load_config",
    "parse_config",
]

_DEVICE = re.compile(r"auto|cpu|cuda(:[0-9]+)?")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True, allow_inf_nan=False)


class BudgetConfig(_Section):
    """``budget:``: how many trials, for how long, on how many workers; how many times a
    trial whose worker died is retried (resuming from its last checkpoint).

    Example:
        >>> BudgetConfig(trials=30, workers=2).timeout is None
        True
    """

    trials: int | None = Field(default=None, ge=1, description="an integer >= 1")
    timeout: float | None = Field(default=None, gt=0, description="seconds, a number > 0")
    workers: int = Field(default=1, ge=1, description="an integer >= 1")
    retries: int = Field(default=1, ge=0, description="an integer >= 0")

    @model_validator(mode="after")
    def _bounded(self) -> BudgetConfig:
        if self.trials is None and self.timeout is None:
            got = self.model_dump(exclude_unset=True)
            accepted = "trials, timeout or both, e.g. {trials: 30} or {timeout: 600}"
            raise Problems([Problem.bad((), "needs trials or timeout", got, accepted)])
        return self


class GuardsConfig(_Section):
    """``task.guards:``: when a trial counts as diverged or not learning (see
    :class:`dltune.torch.Guards`).

    Example:
        >>> GuardsConfig(patience_epochs=3).loss_ratio
        10.0
    """

    enabled: bool = Field(default=True, description="true or false")
    loss_ratio: float = Field(default=10.0, gt=1, description="a number > 1")
    epoch_loss_ratio: float = Field(default=1.5, gt=1, description="a number > 1")
    max_grad_norm: float | None = Field(default=1e4, gt=0, description="a number > 0, or null")
    patience_epochs: int = Field(default=2, ge=0, description="an integer >= 0 (0 disables)")
    min_improvement: float = Field(default=0.99, gt=0, le=1, description="a number in (0, 1]")
    chance_margin: float = Field(default=0.05, ge=0, lt=1, description="a number in [0, 1)")


class TaskConfig(_Section):
    """``task:``: what to train (see :class:`dltune.torch.Task`); ``dataset`` and ``model``
    are stored under their registered names.

    Example:
        >>> TaskConfig(dataset="Digits", model="cnn").dataset
        'digits'
    """

    dataset: str = Field(description="a data set name, e.g. digits")
    model: str = Field(description="a model name, e.g. cnn")
    epochs: int = Field(default=10, ge=1, description="an integer >= 1")
    data_dir: str | None = Field(default=None, min_length=1, description="a directory")
    download: bool = Field(default=True, description="true or false")
    device: str = Field(default="auto", description="auto, cpu, cuda or cuda:N")
    checkpoint_dir: str | None = Field(
        default="checkpoints", min_length=1, description="a directory, or null for no checkpoints"
    )
    keep_checkpoints: bool = Field(default=False, description="true or false")
    guards: GuardsConfig = Field(default_factory=GuardsConfig, description="a mapping")
    split_seed: int = Field(default=0, ge=0, description="an integer >= 0")
    threads: int | None = Field(default=None, ge=1, description="an integer >= 1, or null")

    @field_validator("dataset")
    @classmethod
    def _dataset(cls, value: str) -> str:
        from dltune.config._trainer import check_registered
        from dltune.torch.datasets import DATASETS

        return check_registered(DATASETS, value)

    @field_validator("model")
    @classmethod
    def _model(cls, value: str) -> str:
        from dltune.config._trainer import check_registered
        from dltune.torch.models import MODELS

        return check_registered(MODELS, value)

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not _DEVICE.fullmatch(value):
            accepted = "auto, cpu, cuda or cuda:N"
            raise Problems([Problem.bad((), "is not a device", value, accepted)])
        return value


class PluginConfig(_Section):
    """``sampler:`` or ``pruner:``: a registered ``type`` and its constructor's arguments.

    The YAML form is flat, ``{type: median, n_startup_trials: 5}``, or just the type's name.

    Example:
        >>> PluginConfig.model_validate({"type": "median", "n_startup_trials": 5}).kwargs
        {'n_startup_trials': 5}
    """

    type: str = Field(description="a registered name")
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _flat(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"type": data}
        if isinstance(data, PluginConfig):
            return data
        if not isinstance(data, Mapping):
            accepted = "a name, or a mapping of type and arguments, e.g. {type: median}"
            raise Problems([Problem.bad((), "must be a name or a mapping", data, accepted)])
        if set(data) <= {"type", "kwargs"} and isinstance(data.get("kwargs", {}), Mapping):
            return data  # already split (the Python form)
        out: dict[str, Any] = {"kwargs": {k: v for k, v in data.items() if k != "type"}}
        if "type" in data:
            out["type"] = data["type"]
        return out

    def to_mapping(self) -> dict[str, Any]:
        """The flat YAML form."""
        return {"type": self.type, **self.kwargs}


class RetrainConfig(_Section):
    """``retrain:``: the top-k configurations retrained with fresh seeds, scored on test.

    Example:
        >>> RetrainConfig(top_k=0).seeds  # top_k 0 disables the retraining
        3
    """

    top_k: int = Field(default=3, ge=0, description="an integer >= 0 (0 disables)")
    seeds: int = Field(default=3, ge=1, description="an integer >= 1")


class LRFindConfig(_Section):
    """``lr_find:``: the sweep of the learning-rate range test.

    Example:
        >>> LRFindConfig().steps
        100
    """

    min_lr: float = Field(default=1e-7, gt=0, description="a number > 0")
    max_lr: float = Field(default=10.0, gt=0, description="a number > min_lr")
    steps: int = Field(default=100, ge=10, description="an integer >= 10")

    @model_validator(mode="after")
    def _ordered(self) -> LRFindConfig:
        if self.min_lr >= self.max_lr:
            accepted = f"a number > min_lr = {self.min_lr!r}"
            raise Problems([Problem.bad(("max_lr",), "must be > min_lr", self.max_lr, accepted)])
        return self


class TuneConfig(_Section):
    """A ``dltune tune`` config: the study, its budget, sampler and pruner, the task and the
    search space. Build one with :func:`load_config` or :func:`parse_config` (which turn every
    problem into one :class:`ConfigError`).

    Example:
        >>> config = parse_config({
        ...     "study": "demo",
        ...     "budget": {"trials": 2},
        ...     "task": {"dataset": "digits", "model": "mlp", "epochs": 1},
        ...     "space": {"lr": {"low": 1e-3, "high": 1e-1, "log": True}, "width": 16},
        ... })
        >>> config.direction, type(config.study_kwargs()["sampler"]).__name__
        ('maximize', 'AutoSampler')
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    study: str = Field(min_length=1, description="the study name, a non-empty string")
    storage: str | None = Field(
        default=None, min_length=1, description="a URL such as sqlite:///x.db"
    )
    metric: str = Field(default="val_accuracy", description="val_accuracy or val_loss")
    direction: Literal["maximize", "minimize"] | None = Field(
        default=None,
        validate_default=True,
        description="maximize or minimize, as the metric implies",
    )
    seed: int | None = Field(default=None, ge=0, description="an integer >= 0")
    budget: BudgetConfig = Field(description="a mapping of trials and/or timeout, and workers")
    task: TaskConfig = Field(description="a mapping with dataset and model")
    space: SearchSpace = Field(description="a mapping of hyperparameter name to spec")
    sampler: PluginConfig = Field(default_factory=lambda: PluginConfig(type="auto"))
    pruner: PluginConfig = Field(default_factory=lambda: PluginConfig(type="median"))
    retrain: RetrainConfig = Field(default_factory=RetrainConfig, description="a mapping")
    lr_find: LRFindConfig = Field(default_factory=LRFindConfig, description="a mapping")

    _source: str = PrivateAttr("<config>")

    # -- validation (every check that can run on its own does, so all problems show at once)

    @field_validator("metric")
    @classmethod
    def _metric(cls, value: str) -> str:
        from dltune.config._trainer import metrics

        valid = list(metrics())
        if value not in valid:
            raise Problems([Problem.unknown((), "metric", value, valid, ", ".join(valid))])
        return value

    @field_validator("direction")
    @classmethod
    def _direction(cls, value: str | None, info: ValidationInfo) -> str | None:
        from dltune.config._trainer import metrics

        metric = info.data.get("metric")
        if metric is None:  # the metric is invalid, and reported
            return value
        implied = metrics()[metric]
        if value is not None and value != implied:
            problem = f"contradicts metric {metric}, which is {implied}d"
            accepted = f"{implied!r}, or leave direction out"
            raise Problems([Problem.bad((), problem, value, accepted)])
        return implied

    @field_validator("space", mode="before")
    @classmethod
    def _space(cls, value: Any) -> SearchSpace:
        from dltune.config._trainer import check_space
        from dltune.config._trainer import float_names

        if isinstance(value, SearchSpace):
            entries, out = value._entries, ProblemLog()
        elif isinstance(value, Mapping):
            entries, out = parse_space(value, float_names=float_names())
        else:
            accepted = "a mapping of hyperparameter name to spec, e.g. {lr: {low: ..., high: ...}}"
            raise Problems([Problem.bad((), "must be a mapping", value, accepted)])
        names = list(value.to_mapping() if isinstance(value, SearchSpace) else value)
        out.extend(check_space(names, entries))
        if out:  # in the order of the file
            rank = {name: i for i, name in enumerate(map(str, names))}
            raise Problems(sorted(out, key=lambda p: rank.get(str(p.loc[0]), -1)))
        return value if isinstance(value, SearchSpace) else SearchSpace._of(entries)

    @field_validator("sampler")
    @classmethod
    def _sampler(cls, value: PluginConfig, info: ValidationInfo) -> PluginConfig:
        return _checked(SAMPLERS, value, info)

    @field_validator("pruner")
    @classmethod
    def _pruner(cls, value: PluginConfig, info: ValidationInfo) -> PluginConfig:
        return _checked(PRUNERS, value, info)

    # -- using -----------------------------------------------------------------------------

    @property
    def source(self) -> str:
        """The file the config came from (``<config>`` for a mapping)."""
        return self._source

    def build_task(self) -> Task:
        """The :class:`dltune.torch.Task` this config trains (nothing is loaded yet)."""
        from dltune.torch import Guards
        from dltune.torch import Task

        task = self.task
        kwargs: dict[str, Any] = {}
        if task.data_dir is not None:
            kwargs["data_dir"] = Path(task.data_dir)
        return Task(
            dataset=task.dataset,
            model=task.model,
            epochs=task.epochs,
            metric=self.metric,
            download=task.download,
            device=task.device,
            checkpoint_dir=None if task.checkpoint_dir is None else Path(task.checkpoint_dir),
            keep_checkpoints=task.keep_checkpoints,
            guards=Guards(**task.guards.model_dump()),
            split_seed=task.split_seed,
            threads=task.threads,
            **kwargs,
        )

    def build_sampler(self) -> BaseSampler:
        """The sampler, seeded with the config's ``seed`` unless ``sampler:`` gives one; a
        sampler taking ``n_trials`` (``auto``) is told ``budget.trials``."""
        return build_plugin(
            SAMPLERS,
            self.sampler.type,
            self.sampler.kwargs,
            seed=self.seed,
            space=self.space,
            defaults={"n_trials": self.budget.trials},
        )

    def build_pruner(self) -> BasePruner:
        """The pruner (the config's ``seed`` seeds it too, if it takes one; one taking
        ``max_resource``, Hyperband, gets the task's epochs unless ``pruner:`` gives it)."""
        return build_plugin(
            PRUNERS,
            self.pruner.type,
            self.pruner.kwargs,
            seed=self.seed,
            space=self.space,
            defaults={"max_resource": self.task.epochs},
        )

    def study_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of :func:`dltune.create_study`: ``study_name``, ``storage``,
        ``direction``, ``sampler``, ``pruner`` and ``seed`` (the study seed, from which each
        trial's ``trial.seed`` derives; the sampler and pruner are seeded with it too);
        ``storage`` is ``None`` when the config gives none: the caller decides.
        """
        return {
            "study_name": self.study,
            "storage": self.storage,
            "direction": self.direction,
            "sampler": self.build_sampler(),
            "pruner": self.build_pruner(),
            "seed": self.seed,
        }

    def to_mapping(self) -> dict[str, Any]:
        """The config as a plain mapping (YAML-ready; :func:`parse_config` reads it back)."""
        out = self.model_dump(exclude={"space", "sampler", "pruner"})
        out["space"] = self.space.to_mapping()
        out["sampler"] = self.sampler.to_mapping()
        out["pruner"] = self.pruner.to_mapping()
        return {name: out[name] for name in type(self).model_fields}

    def with_overrides(
        self,
        *,
        trials: int | None = None,
        workers: int | None = None,
        storage: str | None = None,
        timeout: float | None = None,
        seed: int | None = None,
        space: SearchSpace | None = None,
    ) -> TuneConfig:
        """A validated copy with the given settings replaced (``None`` keeps the config's):
        the command line's flags override the file.

        Raises:
            ConfigError: If the result is invalid (say ``workers=0``).
        """
        budget = {"trials": trials, "workers": workers, "timeout": timeout}
        given: dict[str, Any] = {k: v for k, v in budget.items() if v is not None}
        data = self.to_mapping()
        data["budget"] = {**data["budget"], **given}
        for key, value in (("storage", storage), ("seed", seed), ("space", space)):
            if value is not None:
                data[key] = value
                given[key] = value
        if not given:
            return self
        overrides = ", ".join(f"{k}={v!r}" for k, v in given.items() if k != "space")
        return parse_config(data, source=f"{self._source} (with {overrides or 'a new space'})")


def _checked(registry: Any, value: PluginConfig, info: ValidationInfo) -> PluginConfig:
    space = info.data.get("space")
    task = info.data.get("task")
    defaults = {"max_resource": task.epochs} if isinstance(task, TaskConfig) else None
    name = check_plugin(
        registry,
        value.type,
        value.kwargs,
        seed=info.data.get("seed"),
        space=space,
        defaults=defaults,
    )
    return value if name == value.type else value.model_copy(update={"type": name})


def parse_config(mapping: Any, source: str = "<config>") -> TuneConfig:
    """Validate a config mapping (what the YAML file holds).

    Args:
        mapping: The settings.
        source: Where they came from, for the error message.

    Raises:
        ConfigError: Listing every problem, one per line.
        MissingDependencyError: If torch (the trainer) is not installed.

    Example:
        >>> parse_config({"study": "s", "budget": {"workers": 0}, "space": {}})
        Traceback (most recent call last):
            ...
        dltune.config._errors.ConfigError: invalid config <config>:
          budget.workers: must be >= 1 (got 0; an integer >= 1)
          task: required (missing; a mapping with dataset and model)
    """
    if not isinstance(mapping, Mapping):
        keys = ", ".join(TuneConfig.model_fields)
        problem = Problem.bad((), "must be a mapping", mapping, f"a mapping with keys {keys}")
        raise ConfigError.of([problem], source)
    try:
        config = TuneConfig.model_validate(dict(mapping))
    except ValidationError as exc:
        raise ConfigError.of(translate(exc, TuneConfig), source) from None
    config._source = source
    return config


def load_config(path: str | os.PathLike[str]) -> TuneConfig:
    """Read and validate a YAML config file (nothing is trained, nothing is stored).

    Raises:
        ConfigError: For a missing or unreadable file, invalid YAML (with line and column),
            or every problem of the settings.
        MissingDependencyError: If torch (the trainer) is not installed.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "tune.yaml"
        >>> _ = path.write_text(
        ...     "study: s\\nbudget: {trials: 1}\\ntask: {dataset: digits, model: mlp}\\n"
        ...     "space: {lr: {low: 1e-4, high: 1e-1, log: true}}\\n"
        ... )
        >>> load_config(path).space.distributions["lr"].low
        0.0001
    """
    return parse_config(read_yaml(path), source=str(path))
