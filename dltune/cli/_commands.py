"""The reading commands, ``delete`` and ``storage``."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING
from typing import Any

import click

from dltune import __version__
from dltune.cli._common import _OUTCOMES
from dltune.cli._common import _STATES
from dltune.cli._common import UserError
from dltune.cli._common import _check_exists
from dltune.cli._common import _format_option
from dltune.cli._common import _Group
from dltune.cli._common import _open_storage
from dltune.cli._common import _storage_option
from dltune.cli._common import _verbose_option
from dltune.cli._common import mask_url
from dltune.cli._format import _TRIAL_HEADERS
from dltune.cli._format import _float
from dltune.cli._format import _param
from dltune.cli._format import _trial_record
from dltune.cli._format import _trial_rows
from dltune.cli._format import _when
from dltune.cli._format import render_table
from dltune.cli._format import to_json

if TYPE_CHECKING:
    pass


@click.group("dltune", cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="dltune")
@_verbose_option
def cli() -> None:
    """Look at, delete and run dltune studies kept in a SQLite or PostgreSQL storage.

    Every command takes --storage URL (default: $DLTUNE_STORAGE, else sqlite:///dltune.db).
    Errors in the input exit with code 2.
    """


@cli.command()
@_storage_option
@_format_option
@_verbose_option
def studies(url: str, fmt: str) -> None:
    """List the studies: directions, trial counts by state, best value, start time."""
    from dltune.trial import TrialState

    records: list[dict[str, Any]] = []
    with _open_storage(url, read_only=True) as storage:
        for study in storage.get_all_studies():
            counts = {s: storage.get_n_trials(study.study_id, (TrialState(s),)) for s in _STATES}
            best: float | None = None
            if len(study.directions) == 1:
                trial = storage.get_best_trial(study.study_id)
                best = None if trial is None else trial.value
            records.append(
                {
                    "name": study.study_name,
                    "directions": [d.name.lower() for d in study.directions],
                    "n_trials": study.n_trials,
                    "states": counts,
                    "best_value": best,
                    "datetime_start": study.datetime_start,
                }
            )
    if fmt == "json":
        click.echo(to_json(records))
        return
    if not records:
        click.echo(f"no studies in {mask_url(url)}", err=True)
        return
    rows = [
        [
            r["name"],
            ",".join(r["directions"]),
            str(r["n_trials"]),
            *(str(r["states"][s]) for s in _STATES),
            _float(r["best_value"]),
            _when(r["datetime_start"]),
        ]
        for r in records
    ]
    headers = ("NAME", "DIRECTIONS", "TRIALS", *_STATES, "BEST", "STARTED")
    click.echo(render_table(headers, rows))


@cli.command()
@click.argument("study_name", metavar="STUDY")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=click.Choice((*_STATES, *_OUTCOMES), case_sensitive=False),
    help="Show only trials in this state (or PRUNED ones a guard stopped as DIVERGED or "
    "NOT_LEARNING); repeat for several.",
)
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="Show only the last N trials (the highest numbers) of those selected.",
)
@_storage_option
@_format_option
@_verbose_option
def trials(
    study_name: str, states: tuple[str, ...], limit: int | None, url: str, fmt: str
) -> None:
    """List a study's trials: number, state, value(s), params, duration, reason.

    The reason says why a trial ended as it did: 'stale' (its worker died), 'interrupted'
    (Ctrl-C), 'diverged at epoch 2 step 17: loss=nan' or 'not learning after 2 epochs: ...'
    (the trainer's guards), or the error its objective raised.
    """
    from dltune.trial import TrialState

    upper = {s.upper() for s in states}
    outcomes = {s.lower() for s in upper & set(_OUTCOMES)}
    with _open_storage(url, read_only=True) as storage:
        study_id = storage.get_study_id_from_name(study_name)
        n_objectives = len(storage.get_study_directions(study_id))
        wanted = {TrialState(s) for s in upper - set(_OUTCOMES)}
        if outcomes:
            wanted.add(TrialState.PRUNED)
        selected = storage.get_all_trials(study_id, wanted or None)
    if outcomes:
        plain = upper - set(_OUTCOMES)
        selected = [t for t in selected if t.state.name in plain or t.outcome in outcomes]
    if limit is not None:
        selected = selected[-limit:]
    if fmt == "json":
        click.echo(to_json([_trial_record(t, n_objectives) for t in selected]))
    elif not selected:
        which = " in the states asked for" if states else ""
        click.echo(f"study {study_name!r} has no trials{which}", err=True)
    else:
        click.echo(render_table(_TRIAL_HEADERS, _trial_rows(selected)))


@cli.command()
@click.argument("study_name", metavar="STUDY")
@_storage_option
@_format_option
@_verbose_option
def best(study_name: str, url: str, fmt: str) -> None:
    """Show the best trial: its number, value and params.

    After `dltune tune`, also the configuration its retraining chose, with its test accuracy
    over fresh seeds and where the model is.

    For a study with several objectives, the Pareto front: the complete trials no other trial
    beats in every objective.
    """
    from dltune.study import load_study

    with _open_storage(url, read_only=True) as storage:
        storage.get_study_id_from_name(study_name)
        study = load_study(study_name, storage)
        directions = [d.name.lower() for d in study.directions]
        if len(directions) > 1:
            front = study.best_trials
            if fmt == "json":
                records = [_trial_record(t, len(directions)) for t in front]
                data = {"study": study_name, "directions": directions, "best_trials": records}
                click.echo(to_json(data))
            elif not front:
                raise UserError(f"study {study_name!r} has no COMPLETE trial yet")
            else:
                click.echo(render_table(_TRIAL_HEADERS, _trial_rows(front)))
            return
        trial = study.best_trial
        retrain = study.system_attrs.get("retrain")
    if fmt == "json":
        data = {"study": study_name, "direction": directions[0], **_trial_record(trial, 1)}
        if retrain is not None:
            data["retrain"] = retrain
        click.echo(to_json(data))
        return
    rows = [["number", str(trial.number)], ["value", _float(trial.value)]]
    rows += [[f"params.{k}", _param(v)] for k, v in trial.params.items()]
    rows += _retrain_rows(retrain)
    click.echo(render_table(("FIELD", "VALUE"), rows))


def _retrain_rows(retrain: Any) -> list[list[str]]:
    """What `dltune tune` found when it retrained the top configurations (if it did)."""
    if not isinstance(retrain, dict) or retrain.get("chosen") is None:
        return []
    chosen = retrain["candidates"][retrain["chosen"]]
    finished = [v for v in chosen["test_accuracy"] if v is not None]
    mean = sum(finished) / len(finished) if finished else None
    spread = (
        (sum((v - mean) ** 2 for v in finished) / len(finished)) ** 0.5
        if mean is not None
        else None
    )
    rows = [
        ["retrained.chosen_trial", str(chosen["trial_number"])],
        [
            "retrained.test_accuracy",
            "-"
            if mean is None
            else f"{mean:.4f} ± {spread:.4f} ({len(finished)} of {len(chosen['seeds'])} seeds)",
        ],
    ]
    if retrain.get("model_path"):
        rows.append(["retrained.model", str(retrain["model_path"])])
    return rows


@cli.command()
@click.argument("study_name", metavar="STUDY")
@click.option("--yes", "-y", is_flag=True, help="Delete without asking.")
@_storage_option
@_verbose_option
def delete(study_name: str, yes: bool, url: str) -> None:
    """Delete a study and all its trials, after asking (or with --yes).

    Exits with code 1 if the answer is no, and 2 if there is no one to ask (stdin closed).
    """
    with _open_storage(url) as storage:
        study_id = storage.get_study_id_from_name(study_name)
        if not yes:
            n = storage.get_n_trials(study_id)
            question = f"Delete study {study_name!r} and its {n} trial(s)? This cannot be undone."
            try:
                answer = click.confirm(question, default=False, err=True)
            except click.Abort:  # EOF on stdin: nobody to ask
                click.echo("", err=True)
                raise UserError(
                    f"refusing to delete study {study_name!r} without confirmation: stdin is "
                    "closed; pass --yes to delete it anyway"
                ) from None
            if not answer:
                click.echo(f"study {study_name!r} was not deleted", err=True)
                sys.exit(1)
        storage.delete_study(study_id)
    click.echo(f"deleted study {study_name!r}")


@cli.group("storage", cls=_Group)
def storage_group() -> None:
    """Manage the storage database itself."""


@storage_group.command()
@_storage_option
@_verbose_option
def upgrade(url: str) -> None:
    """Bring the database's schema to this dltune's revision (creating it if empty).

    Back the database up first; stop every worker using it while it runs.
    """
    from dltune.storage import upgrade_storage

    old, new = upgrade_storage(url)
    if old == new:
        click.echo(f"{mask_url(url)} is already at schema revision {new}")
    else:
        click.echo(f"upgraded {mask_url(url)}: {old or '(empty)'} -> {new}")


@storage_group.command()
@_storage_option
@_format_option
@_verbose_option
def version(url: str, fmt: str) -> None:
    """Show the schema revision of the database ('none' if it holds no dltune schema)."""
    from dltune.storage import current_schema_version

    _check_exists(url)
    revision = current_schema_version(url)
    if fmt == "json":
        click.echo(to_json({"storage": mask_url(url), "revision": revision}))
    else:
        click.echo(revision or "none")


# -- worker ----------------------------------------------------------------------------------
