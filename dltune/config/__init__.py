"""The YAML config of ``dltune tune``: parsing, validation and the search space it describes.

Loading only validates: nothing is trained and nothing is stored until the caller builds the
study (:meth:`TuneConfig.study_kwargs`) and runs it. Every problem of a config is reported at
once, in one :class:`ConfigError`, one line per problem::

    invalid config tune.yaml:
      space.lr.low: must be > 0 with log: true (got -1.0; a positive number)
      sampler.type: unknown sampler 'tpee', did you mean 'tpe'? (valid names: random, ...)

The schema (every mapping refuses unknown keys, naming the accepted ones)::

    study: digits-cnn               # required: the study name
    storage: sqlite:///dltune.db    # optional; null: the caller decides ($DLTUNE_STORAGE, ...)
    metric: val_accuracy            # val_accuracy (default) | val_loss
    direction: maximize             # optional: implied by the metric; a contradiction is an error
    seed: 0                         # optional, an int >= 0: seeds the sampler (and pruner) when
                                    # they take a seed and their section gives none
    budget:                         # required: trials, timeout or both
      trials: 30                    #   int >= 1
      timeout: 240                  #   seconds > 0
      workers: 2                    #   int >= 1 (default 1)
      retries: 1                    #   a dead worker's trial is rerun this often (default 1)
    sampler: {type: tpe}            # default {type: auto}; a bare name works too (sampler: tpe).
                                    # type: a name in dltune.samplers.SAMPLERS (auto, tpe, gp,
                                    # cmaes, qmc, random, grid); the other keys are the class's
                                    # keyword arguments (checked against its signature). auto
                                    # and any sampler taking n_trials get budget.trials. grid
                                    # without search_space takes its grid from the space
                                    # (choices, int ranges, float ranges with step).
    pruner: {type: median, n_startup_trials: 5, n_warmup_steps: 2}
                                    # default {type: median}; a name in dltune.pruners.PRUNERS
                                    # (nop, median, percentile, threshold, patient, asha =
                                    # successive_halving, hyperband); the other keys are its
                                    # keyword arguments, e.g. {type: asha, min_resource: 1,
                                    # reduction_factor: 3}. hyperband's max_resource defaults
                                    # to task.epochs. BOHB-style search: sampler {type: tpe,
                                    # multi_fidelity: true} with pruner {type: hyperband}.
    task:                           # required
      dataset: digits               #   required: a name in dltune.torch.datasets.DATASETS
      model: cnn                    #   required: a name in dltune.torch.models.MODELS
      epochs: 10                    #   int >= 1 (default 10)
      data_dir: ./data              #   default $DLTUNE_DATA_DIR, else ~/.cache/dltune/data
      download: true                #   default true
      device: auto                  #   auto (default) | cpu | cuda | cuda:N
      checkpoint_dir: checkpoints   #   default checkpoints; null disables checkpoints
      keep_checkpoints: false       #   true keeps finished trials' checkpoints too
      split_seed: 0                 #   the fixed train/validation split (default 0)
      threads: null                 #   torch threads per worker (default: torch's)
      guards: {enabled: true, loss_ratio: 10, epoch_loss_ratio: 1.5, max_grad_norm: 1.0e4,
               patience_epochs: 2, min_improvement: 0.99, chance_margin: 0.05}  # the defaults
    space:                          # required: HParams field -> spec (dltune.torch.HParams)
      optimizer: {choices: [sgd, adam, adamw, rmsprop]}       # categorical
      lr: {low: 1.0e-4, high: 1.0, log: true}                 # float range
      momentum: {low: 0.0, high: 0.99, when: {optimizer: [sgd, rmsprop]}}   # conditional
      nesterov: {choices: [true, false], when: {optimizer: sgd}}
      beta1: {low: 0.8, high: 0.99, when: {optimizer: [adam, adamw]}}
      batch_size: {choices: [16, 32, 64, 128]}
      width: {low: 16, high: 128, step: 16}                   # int range: all bounds ints
      dropout: 0.1                                            # a single value is fixed
    retrain: {top_k: 3, seeds: 3}   # top_k >= 0 (0 disables), seeds >= 1; these are defaults
    lr_find: {min_lr: 1.0e-7, max_lr: 10, steps: 100}   # 0 < min_lr < max_lr, steps >= 10

A space entry is ``{choices: [...]}`` (null, booleans, numbers or strings), ``{low, high}``
with optional ``log: true``, ``step`` and ``type: float|int`` (an int range when the bounds
and step are all integers, except for the trainer's float hyperparameters such as ``dropout``,
or with ``type: float``), or a single value, which is fixed. ``when: {param: value or
[values]}`` makes an entry conditional: ``param`` must be a categorical entry or a fixed value,
the values must be among its choices, and conditions must not form a cycle. Names, component
choices (optimizer, schedule, activation, loss, init), bounds and fixed values are checked
against the trainer (:class:`dltune.torch.HParams` and the component registries).

YAML floats follow YAML 1.2: ``1e-4`` and ``1e4`` are numbers (PyYAML alone reads them as
strings). A key given twice in one mapping is an error.

Needs the torch extra (pydantic; the trainer-bound checks import torch):
``pip install 'dltune[torch]'``.

Example:
    >>> import dltune
    >>> config = parse_config({
    ...     "study": "demo",
    ...     "budget": {"trials": 2},
    ...     "task": {"dataset": "digits", "model": "mlp", "epochs": 1},
    ...     "space": {
    ...         "optimizer": {"choices": ["sgd", "adam"]},
    ...         "momentum": {"low": 0.5, "high": 0.99, "when": {"optimizer": "sgd"}},
    ...         "width": 16,
    ...     },
    ... })
    >>> study = dltune.create_study(**config.study_kwargs())
    >>> params = config.space.suggest(study.ask())
    >>> ("momentum" in params) == (params["optimizer"] == "sgd"), params["width"]
    (True, 16)
"""

from __future__ import annotations

from dltune._imports import require

require("pydantic", extra="torch", feature="dltune.config")

from dltune.config._errors import ConfigError  # noqa: E402
from dltune.config._model import BudgetConfig  # noqa: E402
from dltune.config._model import GuardsConfig  # noqa: E402
from dltune.config._model import LRFindConfig  # noqa: E402
from dltune.config._model import PluginConfig  # noqa: E402
from dltune.config._model import RetrainConfig  # noqa: E402
from dltune.config._model import TaskConfig  # noqa: E402
from dltune.config._model import TuneConfig  # noqa: E402
from dltune.config._model import load_config  # noqa: E402
from dltune.config._model import parse_config  # noqa: E402
from dltune.config._space import SearchSpace  # noqa: E402
from dltune.config._yaml import ConfigLoader  # noqa: E402

__all__ = [
    "BudgetConfig",
    "ConfigError",
    "ConfigLoader",
    "GuardsConfig",
    "LRFindConfig",
    "PluginConfig",
    "RetrainConfig",
    "SearchSpace",
    "TaskConfig",
    "TuneConfig",
    "load_config",
    "parse_config",
]
