"""The records of :mod:`benchmarks.multifidelity` and its RESULTS.md section.

Apart from running, so a section can be rebuilt from the saved raw results
(``python -m benchmarks multifidelity --mf-report-only``) and tested without training.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from benchmarks._common import md_table
from benchmarks._common import median
from benchmarks.mnist1d import TrialRecord
from benchmarks.mnist1d import _mean_std

#: Method keys (``--mf-methods``) and how the section names them, in the default order.
LABELS = {
    "random": "dltune random, no pruning",
    "asha": "dltune TPE + ASHA",
    "bohb": "dltune BOHB-style",
    "pbt": "dltune PBT",
    "optuna-hyperband": "Optuna TPE + Hyperband",
    "optuna-sha": "Optuna TPE + SuccessiveHalving",
}
DLTUNE_CANDIDATES = ("asha", "bohb", "pbt")  # "dltune's best method" is one of these
HYPERBAND, RANDOM = "optuna-hyperband", "random"
GOAL_VS_HYPERBAND, GOAL_VS_RANDOM = 2.0, 5.0
FRACTIONS = (0.25, 0.5, 0.75, 1.0)
INF = float("inf")
_BROKEN = ("diverged", "not_learning", "fail")  # never a pick

SUMMARY_HEADERS = [
    "Method",
    "Time to target, median (range)",
    "Seeds reached",
    "Speed-up vs Optuna TPE + Hyperband",
    "Speed-up vs dltune random",
    "Best val at the end (median)",
    "Retrained test (mean ± sd of seeds)",
    "Epochs trained (median)",
    "Trials finished (median)",
    "Epochs saved by resume (median)",
]
ABSOLUTE_HEADERS = [
    "Method",
    "Seed",
    "Ran",
    "Time to target",
    "Best val (complete)",
    "Best val (any epoch)",
    "Retrained test",
    "Finished",
    "Complete",
    "Pruned",
    "Guard-stopped",
    "Failed",
    "Continuations",
    "Epochs trained",
    "Epochs saved (s)",
    "First trial s",
    "Wall s",
    "Load",
    "Pick",
]


@dataclass
class Search:
    """One method's search for one seed: trials, timed reports, resumes, the pick's retraining.

    ``reports`` rows are ``[seconds since the start, trial number, step, value, restored]``
    (``restored`` 1: re-reported from a checkpoint, not trained); ``resumes`` hold what each
    continuation restored: ``{"t", "number", "resume_of", "epochs", "seconds"}``.
    """

    method: str
    seed: int
    budget: float
    wall_seconds: float
    load: float
    trials: list[TrialRecord]
    reports: list[list[float]]
    resumes: list[dict[str, Any]]
    errors: list[str] = field(default_factory=list)
    test: list[float | None] = field(default_factory=list)
    pick: dict[str, Any] | None = None
    order: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Search:
        """Back from ``dataclasses.asdict``."""
        return cls(**{**data, "trials": [TrialRecord(**t) for t in data["trials"]]})

    @property
    def in_budget(self) -> list[TrialRecord]:
        return [t for t in self.trials if t.finished <= self.budget]

    def count(self, *outcomes: str) -> int:
        return sum(1 for t in self.in_budget if t.outcome in outcomes)

    def best(self) -> TrialRecord | None:
        """The best COMPLETE trial finished within the budget."""
        done = [t for t in self.in_budget if t.outcome == "complete" and t.value is not None]
        return max(done, key=lambda t: (t.value, -t.finished), default=None)

    def best_value(self) -> float:
        """The best complete trial's value (PBT: of the segments finished within the budget, the
        best of those that reached the furthest epoch)."""
        if self.pick is not None and "schedule" in self.pick:
            ends: dict[int, float] = {}
            for r in self.reports:
                ends[int(r[1])] = max(ends.get(int(r[1]), 0.0), r[2])
            done = [
                (ends[t.number], t.value)
                for t in self.in_budget
                if t.number in ends and t.value is not None
            ]
            return max(done)[1] if done else math.nan
        best = self.best()
        return math.nan if best is None or best.value is None else best.value

    def _reported(self, until: float) -> list[list[float]]:
        return [r for r in self.reports if r[0] <= until and math.isfinite(r[3])]

    def best_reported(self, until: float | None = None) -> float:
        """The best value any trial reported at any epoch by ``until`` (default: the budget)."""
        values = [r[3] for r in self._reported(self.budget if until is None else until)]
        return max(values, default=math.nan)

    def time_to(self, target: float) -> float | None:
        """The first time any trial reported a value >= ``target`` (``None``: not in budget)."""
        return min((r[0] for r in self._reported(self.budget) if r[3] >= target), default=None)

    def time_to_text(self, target: float) -> str:
        t = self.time_to(target)
        return "not reached" if t is None else f"{t:.1f} s"

    def epochs_trained(self) -> int:
        """Epochs trained within the budget (re-reports of restored epochs excluded)."""
        return sum(1 for r in self.reports if r[0] <= self.budget and not r[4])

    def epochs_saved(self) -> tuple[int, float]:
        """Epochs (and their training seconds) that continuations restored within the budget."""
        done = [r for r in self.resumes if r["t"] <= self.budget]
        return sum(int(r["epochs"]) for r in done), sum(float(r["seconds"]) for r in done)

    @property
    def n_continuations(self) -> int:
        return sum(1 for r in self.resumes if r["t"] <= self.budget)

    @property
    def first_start(self) -> float:
        return min((t.started for t in self.trials), default=math.nan)

    def summary(self, target: float | None) -> str:
        """One line for the progress log."""
        reach = "" if target is None else f", time to {target:.4f}: {self.time_to_text(target)}"
        return (
            f"{self.method:16} seed {self.seed}: best val {self.best_value():.4f}, "
            f"{len(self.in_budget)} trials finished, {self.epochs_trained()} epochs{reach}, "
            f"wall {self.wall_seconds:.0f} s" + (f", ERRORS {self.errors}" if self.errors else "")
        )

    @property
    def test_mean(self) -> float | None:
        done = [v for v in self.test if v is not None]
        return statistics.fmean(done) if done else None

    def choose_pick(self, pbt: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """What to retrain: PBT's schedule; else the best complete trial in the budget; else
        the trial that got furthest within the budget (best value at its last epoch there)."""
        if pbt is not None:
            return {
                "number": pbt["best_trial"],
                "value": pbt["best_value"],
                "schedule": pbt["schedule"],
                "note": f"member {pbt['best_member']}",
            }
        best = self.best()
        if best is not None:
            return {"number": best.number, "value": best.value, "params": best.params}
        last: dict[int, tuple[float, float]] = {}
        for r in self._reported(self.budget):
            last[int(r[1])] = max(last.get(int(r[1]), (-1.0, -1.0)), (r[2], r[3]))
        by_number = {t.number: t for t in self.trials if t.outcome not in _BROKEN}
        ranked = [(v, n) for n, v in last.items() if n in by_number]
        if not ranked:
            return None
        (step, value), number = max(ranked)
        return {
            "number": number,
            "value": value,
            "params": by_number[number].params,
            "note": f"no complete trial: best at epoch {step:.0f}",
        }


# -- statistics ------------------------------------------------------------------------------


def pilot_target(pilot: Sequence[Search], fraction: float) -> float:
    """The median over the pilot's seeds of the best value reported by ``fraction`` of the
    budget (any trial, any epoch)."""
    values = [v for s in pilot if (v := s.best_reported(fraction * s.budget)) == v]
    if not values:
        raise SystemExit("multifidelity: the pilot reported no value; give --mf-target")
    return median(values)


def times(searches: Sequence[Search], target: float) -> list[float]:
    """Each search's time to target; not reached counts as infinitely long (> budget)."""
    return [INF if (t := s.time_to(target)) is None else t for s in searches]


def speedup(reference: list[float], method: list[float], budget: float) -> tuple[float, bool]:
    """``median(reference) / median(method)``; with the reference's median not reached, the
    lower bound ``budget / median(method)`` and True. NaN when the method's is not reached."""
    ref, mine = median(reference), median(method)
    if not mine < INF or not reference:
        return math.nan, False
    if ref == INF:
        return budget / mine, True
    return ref / max(mine, 1e-9), False


def _speedup_text(value: float, is_bound: bool) -> str:
    if value != value:
        return "— (not reached)"
    return f"≥ {value:.2f}x (reference not reached)" if is_bound else f"{value:.2f}x"


def _tests(searches: Sequence[Search]) -> list[float]:
    return [m for s in searches if (m := s.test_mean) is not None]


def _mean_sd(values: list[float]) -> str:
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}"


def _time_range(ts: list[float], budget: float) -> str:
    def show(t: float) -> str:
        return f"> {budget:.0f} s" if t == INF else f"{t:.1f} s"

    return f"{show(median(ts))} ({show(min(ts))}–{show(max(ts))})" if ts else "n/a"


# -- the section -----------------------------------------------------------------------------


class _Data:
    def __init__(self, data: dict[str, Any]) -> None:
        self.raw = data
        self.settings = data["settings"]
        self.target = float(data["target"])
        self.budget = float(self.settings["budget"])
        self.searches = [Search.from_dict(s) for s in data["searches"]]
        self.pilot = [Search.from_dict(s) for s in data.get("pilot", [])]
        self.methods = [m for m in self.settings["methods"] if self.of(m)]

    def of(self, method: str) -> list[Search]:
        return sorted((s for s in self.searches if s.method == method), key=lambda s: s.seed)

    def times(self, method: str) -> list[float]:
        return times(self.of(method), self.target)


def best_dltune(d: _Data) -> str | None:
    """The dltune method (ASHA, BOHB-style, PBT) with the lowest median time to target."""
    ran = [m for m in DLTUNE_CANDIDATES if m in d.methods]

    def key(m: str) -> tuple[float, float]:
        return median(d.times(m)), -statistics.fmean(_tests(d.of(m)) or [0.0])

    return min(ran, key=key, default=None)


def _met(ok: bool) -> str:
    return "**MET**" if ok else "**MISSED**"


def _speed_line(d: _Data, best: str, ref: str, goal: float) -> tuple[str, bool]:
    if ref not in d.methods:
        return f"- vs {LABELS[ref]}: not evaluated ({ref} did not run).", False
    value, bound = speedup(d.times(ref), d.times(best), d.budget)
    tb, tr = median(d.times(best)), median(d.times(ref))
    ok = value == value and value >= goal
    shown = "not reached" if tb == INF else f"{tb:.1f} s"
    ref_shown = f"> {d.budget:.0f} s (not reached)" if tr == INF else f"{tr:.1f} s"
    text = (
        f"- {_met(ok)} ≥ {goal:.0f}x faster to the target than {LABELS[ref]}: median {shown} "
        f"vs {ref_shown}, speed-up {_speedup_text(value, bound)}."
    )
    return text, ok


def _accuracy_line(d: _Data, best: str) -> tuple[str, bool]:
    mine = d.of(best)
    parts, ok = [], True
    for ref in (HYPERBAND, RANDOM):
        if ref not in d.methods:
            parts.append(f"{LABELS[ref]} did not run")
            ok = False
            continue
        a, b = _tests(mine), _tests(d.of(ref))
        if not a or not b:
            parts.append(f"no retrained pick for {LABELS[best] if not a else LABELS[ref]}")
            ok = False
            continue
        diff = statistics.fmean(a) - statistics.fmean(b)
        ok = ok and diff >= 0
        paired = [
            x - y
            for s, r in zip(mine, d.of(ref), strict=False)
            if (x := s.test_mean) is not None and (y := r.test_mean) is not None
        ]
        noise = ""
        if len(paired) > 1:
            se = statistics.stdev(paired) / math.sqrt(len(paired))
            within = "within" if abs(statistics.fmean(paired)) < 2 * se else "beyond"
            noise = f"; paired by seed {100 * statistics.fmean(paired):+.2f} ± {200 * se:.2f} "
            noise += f"points (2 s.e.: {within} the noise)"
        parts.append(
            f"{statistics.fmean(b):.4f} for {LABELS[ref]} ({100 * diff:+.2f} points{noise})"
        )
    text = (
        f"- {_met(ok)} equal or better retrained test accuracy: {LABELS[best]} "
        f"{_mean_sd(_tests(mine))} vs " + "; ".join(parts) + "."
    )
    return text, ok


def verdict(d: _Data) -> list[str]:
    """The targets, MET or MISSED, with the measured numbers."""
    best = best_dltune(d)
    if best is None:
        return ["No verdict: none of dltune's ASHA, BOHB-style or PBT ran."]
    lines = [
        f"dltune's best method here, by median time to validation accuracy ≥ {d.target:.4f}: "
        f"**{LABELS[best]}**.",
        "",
    ]
    results = []
    for ref, goal in ((HYPERBAND, GOAL_VS_HYPERBAND), (RANDOM, GOAL_VS_RANDOM)):
        text, ok = _speed_line(d, best, ref, goal)
        lines.append(text)
        results.append(ok)
    text, ok = _accuracy_line(d, best)
    lines.append(text)
    results.append(ok)
    overall = "all targets MET" if all(results) else f"{results.count(False)} of 3 targets MISSED"
    lines += ["", f"**Verdict: {overall}.**"]
    return lines


def _summary_rows(d: _Data) -> list[list[str]]:
    rows = []
    for m in d.methods:
        mine = d.of(m)
        ts = d.times(m)
        cells = []
        for ref in (HYPERBAND, RANDOM):
            if m == ref:
                cells.append("1 (reference)")
            elif ref in d.methods:
                cells.append(_speedup_text(*speedup(d.times(ref), ts, d.budget)))
            else:
                cells.append("n/a")
        vals = [s.best_value() for s in mine if s.best_value() == s.best_value()]
        saved = [float(s.epochs_saved()[0]) for s in mine]
        rows.append(
            [
                LABELS[m],
                _time_range(ts, d.budget),
                f"{sum(t < INF for t in ts)}/{len(ts)}",
                *cells,
                f"{median(vals):.4f}" if vals else "none complete",
                _mean_sd(_tests(mine)),
                f"{median([float(s.epochs_trained()) for s in mine]):.0f}",
                f"{median([float(len(s.in_budget)) for s in mine]):.0f}",
                f"{median(saved):.0f}" if m in ("asha", "bohb") else "— (no resume)",
            ]
        )
    return rows


def _curve_rows(d: _Data) -> list[list[str]]:
    rows = []
    for m in d.methods:
        cells = []
        for f in FRACTIONS:
            values = [v for s in d.of(m) if (v := s.best_reported(f * s.budget)) == v]
            cells.append(
                f"{median(values):.4f} ({min(values):.3f}–{max(values):.3f})"
                if values
                else "none yet"
            )
        rows.append([LABELS[m], *cells])
    return rows


def _describe(pick: dict[str, Any] | None) -> str:
    if pick is None:
        return "—"
    note = f" ({pick['note']})" if pick.get("note") else ""
    if "schedule" in pick:
        items = pick["schedule"]
        first = items[0]["hparams"]
        lrs = ", ".join(f"{i['start_epoch']}: {i['hparams']['lr']:.2g}" for i in items)
        return (
            f"#{pick['number']}{note} {first['optimizer']} bs={first['batch_size']} "
            f"w={first['width']} {first['activation']}; lr by epoch {lrs}"
        )
    p = pick["params"]
    return (
        f"#{pick['number']}{note} {p['optimizer']} lr={p['lr']:.2g} bs={p['batch_size']} "
        f"w={p['width']} {p['activation']} {p['init']} {p['loss']} "
        f"wd={p['weight_decay']:.1g} do={p['dropout']:.2f}"
    )


def _absolute_rows(d: _Data) -> list[list[str]]:
    rows = []
    for m in d.methods:
        for s in d.of(m):
            epochs, seconds = s.epochs_saved()
            rows.append(
                [
                    LABELS[m],
                    str(s.seed),
                    f"{s.order + 1}.",
                    s.time_to_text(d.target),
                    f"{s.best_value():.4f}" if s.best_value() == s.best_value() else "none",
                    f"{s.best_reported():.4f}"
                    if s.best_reported() == s.best_reported()
                    else "none",
                    _mean_std(s.test) if s.test else "—",
                    str(len(s.in_budget)),
                    str(s.count("complete")),
                    str(s.count("pruned")),
                    str(s.count("diverged", "not_learning")),
                    str(s.count("fail")),
                    str(s.n_continuations),
                    str(s.epochs_trained()),
                    f"{epochs} ({seconds:.0f} s)",
                    f"{s.first_start:.1f}",
                    f"{s.wall_seconds:.0f}",
                    f"{s.load:.1f}",
                    _describe(s.pick),
                ]
            )
    return rows


def _pilot_lines(d: _Data) -> list[str]:
    fraction = d.raw.get("pilot_fraction", 0.75)
    if not d.pilot:
        return [f"Target {d.target:.4f}: {d.raw.get('target_origin', 'given')} (no pilot ran)."]
    values = ", ".join(f"{s.best_reported(fraction * s.budget):.4f}" for s in d.pilot)
    seeds = ", ".join(str(s.seed) for s in d.pilot)
    return [
        f"Target {d.target:.4f}, from this run's pilot: plain dltune random search without "
        f"pruning (guards on) on seeds {seeds} (none of the benchmark's), same budget and "
        f"epochs; its best validation accuracy (any trial, any epoch) by {100 * fraction:.0f}% "
        f"of the budget was {values}; the target is their median, so random search reaches it "
        f"late in its budget on about half of the seeds."
    ]


def report(data: dict[str, Any], rebuilt: str | None = None) -> str:
    """The Markdown section: verdict and ratios first, then absolute numbers, then the setup."""
    d = _Data(data)
    s = d.settings
    lines = [
        f"## Multi-fidelity search on MNIST-1D: dltune's pruners, BOHB-style and PBT vs Optuna "
        f"5, {d.budget:.0f} s x {s['seeds']} seeds, ≤ {s['epochs']} epochs",
        "",
        *data.get("info", []),
    ]
    if rebuilt:
        lines.append(f"- Section rebuilt from the saved results with `{rebuilt}`")
    if s.get("quick"):
        lines.append("- **Quick mode: a smoke test, not a measurement.**")
    lines += ["", "### Verdict against the targets", "", *verdict(d), ""]
    lines += ["### Time to target and ratios (medians over seeds)", ""]
    lines += md_table(SUMMARY_HEADERS, _summary_rows(d))
    lines += ["", "### Best validation accuracy so far (any trial, any epoch; median, range)", ""]
    lines += md_table(
        ["Method", *(f"at {int(100 * f)}% of the budget" for f in FRACTIONS)], _curve_rows(d)
    )
    lines += ["", "### Absolute numbers per method and seed", ""]
    lines += md_table(ABSOLUTE_HEADERS, _absolute_rows(d))
    lines += ["", *_pilot_lines(d)]
    if data.get("skipped"):
        lines += ["", f"**Skipped (dltune API missing): {', '.join(data['skipped'])}**"]
    errors = [e for x in d.searches + d.pilot for e in x.errors]
    if errors:
        lines += ["", "Errors:", ""] + [f"- `{e}`" for e in errors[:8]]
    lines += ["", setup_text(data)]
    return "\n".join(lines)


def setup_text(data: dict[str, Any]) -> str:
    """How the numbers were made."""
    s = data["settings"]
    epochs, budget = s["epochs"], s["budget"]
    retrain = ", ".join(map(str, data.get("retrain_seeds", [])))
    return (
        f"Setup: the task, space, fixed values, data and per-trial seeds of the MNIST-1D "
        f"benchmark above (`benchmarks/mnist1d.py`), but up to {epochs} epochs per trial. Each "
        f"search runs alone, in fresh processes, for {budget:.0f} s of wall time counted from "
        f"before its first process starts (Python start and imports count), with 2 worker "
        f"processes and one torch thread each; the order of the methods rotates by one from "
        f"seed to seed (against drift in the machine's load). Every trial runs inside a thin "
        f"wrapper that logs each reported validation accuracy with its wall time and, once the "
        f"budget is spent, answers `should_prune()` with yes, so running trials stop after "
        f"their current epoch; only what happened within the budget counts. dltune methods "
        f"other than PBT run two processes (as Optuna's side does) that each load the SQLite "
        f"study the parent created and call `optimize(timeout=…)`, with the trainer's guards "
        f"on (diverged or not-learning trials stop early, counted as guard-stopped); trial n "
        f"trains with seed 1000*seed+n. dltune random, no pruning: `RandomSampler(seed)`, "
        f"`NopPruner()`, no checkpoints. dltune TPE + ASHA: `TPESampler(seed=seed)`, "
        f"`SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)` (asynchronous: a "
        f"trial not in the top third of its rung is paused, PRUNED, and promoted later when it "
        f"is), checkpoints every epoch, so a promoted trial continues as a new trial "
        f"(`resume_of`) from the paused one's checkpoint. dltune BOHB-style: "
        f"`create_study(**dltune.presets.bohb(max_resource={epochs}, min_resource=1, "
        f"reduction_factor=3, sampler='tpe', seed=seed))` (Hyperband brackets; TPE fitted on "
        f"the highest rung with enough results), checkpoints as ASHA. dltune PBT: "
        f"`PBT(task, space, population={s['pbt_population']}, "
        f"interval={s['pbt_interval']}, seed=seed).run(n_jobs=2, timeout=remaining)` with "
        f"checkpoints (segments of {s['pbt_interval']} epochs; the bottom quarter copies the "
        f"top quarter's weights and perturbs lr, momentum/beta1, weight decay); its reports "
        f"are timed by interpolating each segment's start and finish (within one epoch), its "
        f"last segments may end up to one segment after the budget, its trials are its "
        f"segments, its pick is the schedule of its best member at the furthest epoch reached, "
        f"and its best val at the end is the best segment value at the furthest epoch reached "
        f"within the budget. Optuna {data.get('optuna', '?')}: two processes "
        f"sharing a `JournalStorage(JournalFileBackend)` study, `TPESampler(seed=1000*seed+"
        f"worker)`, and `HyperbandPruner(min_resource=1, max_resource={epochs}, "
        f"reduction_factor=3)` or `SuccessiveHalvingPruner(min_resource=1, "
        f"reduction_factor=3)` (Optuna's: a pruned trial stops for good), driving the same "
        f"`dltune.torch.train` with the guards off, as in the MNIST-1D benchmark (a non-finite "
        f"loss fails the trial). **Time to target**: the first wall time at which any trial of "
        f"the search reported a validation accuracy ≥ the target at any epoch (a paused or "
        f"pruned trial's early epoch counts); not reached within the budget counts as longer "
        f"than the budget; speed-ups are ratios of the medians over seeds (a reference whose "
        f"median is not reached gives a lower bound, budget / median). Best val at the end: "
        f"the best COMPLETE trial (all {epochs} epochs) finished within the budget; 'any "
        f"epoch' is the best reported value. Epochs trained: epochs reported within the "
        f"budget, not counting epochs a continuation restored from a checkpoint; epochs saved "
        f"by resume: those restored epochs (with their training seconds). Continuations: "
        f"trials that resumed a paused one. Pick: the best complete trial within the budget "
        f"(without one: the trial that got furthest, best at its last epoch; PBT: its "
        f"schedule), retrained from scratch for {epochs} epochs with seeds {retrain}, guards "
        f"off, on the test split (PBT: `replay_schedule`); after all searches, 2 at a time. "
        f"dltune's best method is the one of ASHA, BOHB-style and PBT with the lowest median "
        f"time to target; the targets are ≥ {GOAL_VS_HYPERBAND:.0f}x faster than Optuna TPE + "
        f"Hyperband and ≥ {GOAL_VS_RANDOM:.0f}x faster than dltune random without pruning, with "
        f"a mean retrained test accuracy at least that of both. 'Ran' is the method's place in "
        f"its seed's order. Raw records of every trial and report: "
        f"`benchmarks/_work/multifidelity-{'quick' if s.get('quick') else 'last'}.json`."
    )
