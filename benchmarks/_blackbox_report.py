"""The black-box benchmark's RESULTS.md section, built from its saved raw results (JSON).

Kept apart from the runner so ``--blackbox-report-only`` rebuilds the section without running
(or importing) any optimizer.
"""

from __future__ import annotations

import math
from collections import Counter
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from benchmarks._common import md_table
from benchmarks._common import median
from benchmarks._common import spread
from benchmarks._common import verdict

Opt = tuple[str, str]  # (tool, sampler name): ("dltune", "tpe"), ("optuna", "gp")
Problem = tuple[int, int, int]  # (function, dim, budget)

OPTUNA_CLASSES = {
    "tpe": "TPESampler",
    "gp": "GPSampler",
    "cmaes": "CmaEsSampler",
    "random": "RandomSampler",
    "qmc": "QMCSampler",
}
FUNCTION_NAMES = {
    1: "sphere",
    8: "Rosenbrock",
    10: "ellipsoid",
    15: "Rastrigin",
    17: "Schaffer F7",
    20: "Schwefel",
    21: "Gallagher 101",
    24: "Lunacek bi-Rastrigin",
}
# History sizes at which the cost per trial is measured; the last is the target's.
COST_POINTS = {
    "tpe": (100, 500, 1000),
    "cmaes": (100, 500, 1000),
    "gp": (100, 300),
    "random": (100, 500, 1000),
}
COST_TARGETS = ("tpe", "gp", "cmaes")
TARGET_COST_RATIO = 0.5
TARGET_TPE_WIN_RATE = 0.6
# Regrets below COCO's final target precision count as solved: equal for ranks and wins.
REGRET_FLOOR = 1e-8
COST_PROBLEM = "10-D f8 (Rosenbrock)"
# The issue's measurement of Optuna 5.0 (6 optimizers, budgets 100/200), for context.
ISSUE_MEAN_RANK = {"gp": 1.56, "cmaes": 2.41, "tpe": 2.53, "random": 5.91}
ISSUE_CPU_10D_200 = {"gp": 22.0, "tpe": 0.87}


def label(opt: Sequence[str]) -> str:
    """How an optimizer is named in the tables."""
    tool, name = opt
    return f"Optuna {OPTUNA_CLASSES.get(name, name)}" if tool == "optuna" else f"dltune {name}"


def _fmt(regret: float) -> str:
    if math.isnan(regret):
        return "n/a"
    return f"<{REGRET_FLOOR:.0e}" if regret < REGRET_FLOOR else f"{regret:.3g}"


def _floored(regret: float) -> float:
    return math.inf if math.isnan(regret) else max(regret, REGRET_FLOOR)


def average_ranks(values: Sequence[float]) -> list[float]:
    """Rank 1 for the lowest value; tied values share the mean of their ranks."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    ranks = [0.0] * len(values)
    start = 0
    while start < len(order):
        end = start
        while end + 1 < len(order) and values[order[end + 1]] == values[order[start]]:
            end += 1
        for i in order[start : end + 1]:
            ranks[i] = (start + end) / 2 + 1
        start = end + 1
    return ranks


# -- the regret part -------------------------------------------------------------------------


class Regrets:
    """Final regrets per optimizer, problem and seed, and what follows from their medians."""

    def __init__(self, data: dict[str, Any]) -> None:
        settings = data["settings"]
        self.budgets: list[int] = settings["budgets"]
        self.opts: list[Opt] = [(t, n) for t, n in settings["optimizers"]]
        self.problems: list[Problem] = [
            (f, d, b)
            for b in self.budgets
            for f in settings["functions"]
            for d in settings["dims"]
        ]
        self.n_seeds: int = settings["seeds"]
        fopt = {(r["function"], r["dim"]): r["fopt"] for r in data["fopt"]}
        self.seeds: dict[tuple[Opt, Problem], list[float]] = defaultdict(list)
        self.negative = 0  # runs that found a value below f_opt: f_opt would be wrong
        for run in data["runs"]:
            opt, f, d = (run["tool"], run["sampler"]), run["function"], run["dim"]
            values = run["values"]
            if values and min(values) < fopt[f, d]:
                self.negative += 1
            told = run["told_budget"]
            for b in [told] if told is not None else self.budgets:
                found = values[:b]
                regret = min(found) - fopt[f, d] if len(found) == b else math.nan
                self.seeds[opt, (f, d, b)].append(regret)
        self.median = {
            key: median([r for r in rs if not math.isnan(r)]) for key, rs in self.seeds.items()
        }
        self.ranks: dict[tuple[Opt, Problem], float] = {}
        for p in self.problems:
            ranks = average_ranks([_floored(self.get(o, p)) for o in self.opts])
            self.ranks.update({(o, p): r for o, r in zip(self.opts, ranks, strict=True)})

    def get(self, opt: Opt, problem: Problem) -> float:
        return self.median.get((opt, problem), math.nan)

    def mean_rank(self, opt: Opt, budget: int | None = None, dim: int | None = None) -> float:
        ranks = [
            self.ranks[opt, p]
            for p in self.problems
            if budget in (None, p[2]) and dim in (None, p[1])
        ]
        return sum(ranks) / len(ranks) if ranks else math.nan

    def wins(self, a: Opt, b: Opt, budget: int | None = None) -> tuple[int, int, int]:
        """Problems where ``a``'s median regret is lower, equal, higher than ``b``'s."""
        won = tied = lost = 0
        for p in self.problems:
            if budget not in (None, p[2]):
                continue
            x, y = _floored(self.get(a, p)), _floored(self.get(b, p))
            won, tied, lost = won + (x < y), tied + (x == y), lost + (x > y)
        return won, tied, lost


def _seeds(n: int) -> str:
    return f"{n} seed" if n == 1 else f"{n} seeds"


def _rate(won: int, tied: int, lost: int) -> float:
    n = won + tied + lost
    return (won + tied / 2) / n if n else math.nan


def _pairs(opts: Sequence[Opt]) -> list[tuple[Opt, Opt]]:
    """Each dltune sampler against its Optuna counterpart; ``auto`` against every one."""
    optuna = [o for o in opts if o[0] == "optuna"]
    pairs = []
    for tool, name in opts:
        if tool != "dltune":
            continue
        rivals = optuna if name == "auto" else [o for o in optuna if o[1] == name]
        pairs += [((tool, name), rival) for rival in rivals]
    return pairs


def _rank_target(reg: Regrets) -> list[str]:
    target = "dltune auto's mean rank better than every Optuna sampler's"
    optuna = [o for o in reg.opts if o[0] == "optuna"]
    if ("dltune", "auto") not in reg.opts or not optuna:
        return [target, "not measured: dltune auto or the Optuna samplers not in this run", "—"]
    auto = reg.mean_rank(("dltune", "auto"))
    best = min(optuna, key=reg.mean_rank)
    rival = reg.mean_rank(best)
    ok = auto < rival
    how = (
        "tied"
        if auto == rival
        else f"ahead by {rival - auto:.2f}"
        if ok
        else f"behind by {auto - rival:.2f}"
    )
    return [
        target,
        f"auto {auto:.2f}; best Optuna sampler: {OPTUNA_CLASSES[best[1]]} {rival:.2f}; {how}",
        verdict(ok),
    ]


def _tpe_target(reg: Regrets) -> list[str]:
    target = f"dltune tpe beats Optuna TPESampler on ≥ {TARGET_TPE_WIN_RATE:.0%} of problems"
    a, b = ("dltune", "tpe"), ("optuna", "tpe")
    if a not in reg.opts or b not in reg.opts:
        return [target, "not measured: dltune tpe or Optuna TPESampler not in this run", "—"]
    won, tied, lost = reg.wins(a, b)
    rate = _rate(won, tied, lost)
    ok = rate >= TARGET_TPE_WIN_RATE
    gap = "" if ok else f" ({TARGET_TPE_WIN_RATE - rate:.0%} short)"
    measured = f"{rate:.0%}: {won} won, {tied} tied, {lost} lost of {won + tied + lost}"
    return [target, measured + gap, verdict(ok)]


def _regret_sections(reg: Regrets) -> list[str]:
    lines = ["### Mean rank (1 = best; rank of the median regret among all optimizers)", ""]
    headers = ["Optimizer", f"All {len(reg.problems)} problems"]
    headers += [f"budget {b}" for b in reg.budgets]
    dims = sorted({p[1] for p in reg.problems})
    headers += [f"{d}-D" for d in dims] + ["Issue's Optuna 5.0 (6 optimizers)"]
    rows = []
    for opt in sorted(reg.opts, key=reg.mean_rank):
        row = [label(opt), f"**{reg.mean_rank(opt):.2f}**"]
        row += [f"{reg.mean_rank(opt, budget=b):.2f}" for b in reg.budgets]
        row += [f"{reg.mean_rank(opt, dim=d):.2f}" for d in dims]
        issue = ISSUE_MEAN_RANK.get(opt[1]) if opt[0] == "optuna" else None
        rows.append([*row, f"{issue:.2f}" if issue is not None else ""])
    lines += md_table(headers, rows)
    pairs = _pairs(reg.opts)
    if pairs:
        lines += ["", "### Win rate of each dltune sampler against Optuna's", ""]
        headers = ["dltune", "against", "won / tied / lost", "win rate"]
        headers += [f"budget {b}" for b in reg.budgets]
        rows = []
        for a, b in pairs:
            won, tied, lost = reg.wins(a, b)
            row = [
                label(a),
                label(b),
                f"{won} / {tied} / {lost}",
                f"**{_rate(won, tied, lost):.0%}**",
            ]
            rows.append(row + [f"{_rate(*reg.wins(a, b, budget)):.0%}" for budget in reg.budgets])
        lines += md_table(headers, rows)
        lines += [
            "",
            "A win is a lower median regret over the seeds on one problem (function × "
            "dimension × budget); a tie counts half.",
        ]
    for budget in reg.budgets:
        lines += ["", f"### Median final regret over {_seeds(reg.n_seeds)}, budget {budget}", ""]
        rows = []
        for p in (p for p in reg.problems if p[2] == budget):
            medians = [reg.get(o, p) for o in reg.opts]
            best = min((_floored(m) for m in medians), default=math.inf)
            cells = [f"**{_fmt(m)}**" if _floored(m) == best else _fmt(m) for m in medians]
            counts = {len([r for r in reg.seeds[o, p] if not math.isnan(r)]) for o in reg.opts}
            note = "" if counts == {reg.n_seeds} else f" (seeds: {sorted(counts)})"
            name = f"f{p[0]} {FUNCTION_NAMES.get(p[0], '')}".strip()
            rows.append([name + note, str(p[1]), *cells])
        lines += md_table(["Function", "Dim", *map(label, reg.opts)], rows)
    return lines


def _auto_section(data: dict[str, Any]) -> list[str]:
    """What dltune's ``auto`` chose (from the choices it records on each study)."""
    runs = [r for r in data["runs"] if r["tool"] == "dltune" and r.get("auto_choices")]
    if not runs:
        return []
    counts: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    reasons: dict[str, str] = {}
    for run in runs:
        steps = []
        for choice in run["auto_choices"]:
            name, start = str(choice.get("sampler")), choice.get("from_trial")
            steps.append(name if not start else f"{name} from trial {start}")
            reasons.setdefault(name, str(choice.get("reason", "")))
        told = run["told_budget"]
        counts[str(told) if told is not None else "not told", run["dim"]][" → ".join(steps)] += 1
    rows = [
        [budget, str(dim), "; ".join(f"{seq}: {n}" for seq, n in c.most_common())]
        for (budget, dim), c in sorted(counts.items(), key=lambda kv: (len(kv[0][0]), kv[0]))
    ]
    lines = ["### What dltune auto chose (runs per sequence of choices)", ""]
    lines += md_table(["Budget told", "Dim", "Choices: runs"], rows)
    lines += [""] + [f"- {name}: {why}" for name, why in sorted(reasons.items())]
    return lines


# -- the cost part ---------------------------------------------------------------------------


class Costs:
    """CPU seconds per ask + suggests + tell at fixed history sizes, per tool and sampler."""

    def __init__(self, data: dict[str, Any]) -> None:
        settings = data["settings"]
        self.points: dict[str, list[int]] = settings["cost_points"]
        window = settings["cost_window"]
        self.window: int = window
        self.seconds: dict[tuple[str, str, int], list[float]] = defaultdict(list)
        for run in data["runs"]:
            cpu = run["trial_cpu"]
            for k in self.points[run["sampler"]]:
                if len(cpu) >= k + window + 1:
                    chunk = cpu[k - window : k + window + 1]
                    self.seconds[run["tool"], run["sampler"], k].append(sum(chunk) / len(chunk))

    def ms(self, tool: str, name: str, k: int) -> float:
        return 1000 * median(self.seconds.get((tool, name, k), []))

    def ratio(self, name: str, k: int) -> float:
        return self.ms("dltune", name, k) / self.ms("optuna", name, k)


def _cost_targets(costs: Costs | None) -> list[list[str]]:
    rows = []
    for name in COST_TARGETS:
        points = costs.points.get(name) if costs is not None else None
        k = points[-1] if points else COST_POINTS[name][-1]
        target = (
            f"dltune {name}'s CPU per trial ≤ {TARGET_COST_RATIO} × Optuna "
            f"{OPTUNA_CLASSES[name]}'s, at {k} trials"
        )
        if costs is None or not points:
            rows.append([target, "not measured: not in the cost part", "—"])
            continue
        ratio = costs.ratio(name, k)
        ok = ratio <= TARGET_COST_RATIO
        gap = "" if ok else f" ({ratio / TARGET_COST_RATIO:.1f}× the target)"
        rows.append([target, f"{ratio:.2f}{gap}", verdict(ok)])
    return rows


def _cost_sections(costs: Costs, info: list[str]) -> list[str]:
    lines = [
        f"### CPU per trial (ask + suggests + tell) on the {COST_PROBLEM}: dltune / Optuna",
        "",
    ]
    lines += info + [""] if info else []
    rows = []
    for name, points in costs.points.items():
        for k in points:
            dl = costs.seconds.get(("dltune", name, k), [])
            op = costs.seconds.get(("optuna", name, k), [])
            paired = [a / b for a, b in zip(dl, op, strict=False) if b > 0]
            is_target = name in COST_TARGETS and k == points[-1]
            ratio = costs.ratio(name, k)
            result = verdict(ratio <= TARGET_COST_RATIO) if is_target else "—"
            target = f"≤ {TARGET_COST_RATIO}" if is_target else ""
            rows.append(
                [
                    f"{name} vs {OPTUNA_CLASSES[name]}",
                    str(k),
                    f"{ratio:.3f}",
                    spread(paired, "{:.3f}"),
                    target,
                    result,
                ]
            )
    lines += md_table(
        [
            "Sampler",
            "Trials in history",
            "dltune / Optuna",
            "range over seeds",
            "Target",
            "Result",
        ],
        rows,
    )
    return lines


def _cost_absolute(costs: Costs) -> list[str]:
    rows = []
    for name, points in costs.points.items():
        for k in points:
            row = [f"{name} vs {OPTUNA_CLASSES[name]}", str(k)]
            for tool in ("dltune", "optuna"):
                ms = [1000 * x for x in costs.seconds.get((tool, name, k), [])]
                row += [f"{median(ms):.2f}", spread(ms)]
            rows.append(row)
    headers = ["Sampler", "Trials in history", "dltune ms", "range", "Optuna ms", "range"]
    return md_table(headers, rows) + [
        "",
        f"CPU ms per trial (ask + suggests + tell) on the {COST_PROBLEM}, median over seeds; "
        f"each the mean over the trials k-{costs.window} .. k+{costs.window} of one long run.",
    ]


# -- absolute times and checks ---------------------------------------------------------------


def _absolute(data: dict[str, Any]) -> list[str]:
    top = max(data["settings"]["budgets"])
    dims = data["settings"]["dims"]
    rows = []
    for tool, name in data["settings"]["optimizers"]:
        runs = [r for r in data["runs"] if (r["tool"], r["sampler"]) == (tool, name)]
        full = [r for r in runs if r["n_trials"] == top]
        cells = [f"{median([r['cpu_seconds'] for r in full if r['dim'] == d]):.2f}" for d in dims]
        issue = ISSUE_CPU_10D_200.get(name) if tool == "optuna" else None
        rows.append(
            [
                label((tool, name)),
                *cells,
                f"{issue:.2f}" if issue is not None else "",
                f"{sum(r['cpu_seconds'] for r in runs):.1f}",
                f"{sum(r['wall_seconds'] for r in runs):.1f}",
                str(len(runs)),
            ]
        )
    headers = ["Optimizer", *(f"{d}-D" for d in dims), "Issue's (10-D, 200)"]
    headers += ["CPU s, all runs", "wall s, all runs", "Runs"]
    total = sum(r["cpu_seconds"] for r in data["runs"])
    wall = data["wall_seconds"]
    return md_table(headers, rows) + [
        "",
        f"CPU s of one {top}-trial run (median over problems and seeds) by dimension. The whole "
        f"part: {len(data['runs'])} runs, {total:.0f} s ({total / 3600:.2f} h) of CPU in the "
        f"workers, "
        f"{wall / 60:.1f} min of wall time with {data['settings']['jobs']} processes "
        f"(CPU / wall = {total / wall if wall else math.nan:.2f}).",
    ]


def _checks(reg: Regrets, data: dict[str, Any]) -> list[str]:
    checked = [r for r in data["fopt"] if r["f_at_optimum"] is not None]
    worst = max((abs(r["f_at_optimum"] - r["fopt"]) for r in checked), default=math.nan)
    errors = [r for r in data["runs"] if r["error"]]
    threads = sorted({r["torch_threads"] for r in data["runs"] if r["torch_threads"] is not None})
    lines = [
        f"- f_opt: read from the log header that COCO's `bbob` observer writes (cocoex 2.8 "
        f"has no attribute for it); checked against f at the problem's known optimum "
        f"(`Problem._best_parameter`) for {len(checked)} of {len(data['fopt'])} problems, "
        f"largest difference {worst:.3g}.",
        f"- Runs that found a value below f_opt (a negative regret): {reg.negative} "
        f"({'none, as it must be' if reg.negative == 0 else '**f_opt is wrong**'}).",
        f"- Runs that raised: {len(errors)}"
        + "".join(
            f"; {label((r['tool'], r['sampler']))} f{r['function']} {r['dim']}-D seed "
            f"{r['seed']}: `{r['error']}`"
            for r in errors[:5]
        ),
        f"- torch threads in the workers (Optuna's GPSampler): {threads or 'torch not used'}.",
    ]
    if not data["greenlet"] and ("optuna", "gp") in [tuple(o) for o in reg.opts]:
        lines.append(
            "- **`greenlet` is not installed**: Optuna's GPSampler falls back to a sequential "
            "L-BFGS-B (it warns so), about 2× its CPU time with greenlet."
        )
    if reg.n_seeds < 5:
        lines.append(f"- **{reg.n_seeds} seed(s)**: the issue asks for at least 5.")
    return lines


def _setup(data: dict[str, Any]) -> str:
    s = data["settings"]
    told = data["told_budget"].get("auto")
    auto = (
        ""
        if told is None
        else " dltune's `auto` may be told the budget, so it runs once per budget"
        + (
            ", constructed with `n_trials=budget`."
            if told
            else " (its constructor takes no `n_trials`, so it was run once, as the others)."
        )
    )
    return (
        f"Setup: BBOB functions {', '.join(f'f{f}' for f in s['functions'])} from "
        f"`coco-experiment` (instance 1), dimensions {', '.join(map(str, s['dims']))}, each "
        f"coordinate a `suggest_float` over the problem's box [-5, 5]; regret = best value "
        f"found - f_opt. Budgets {', '.join(map(str, s['budgets']))} trials, seeds "
        f"{', '.join(map(str, range(s['seeds'])))}, every optimizer on every problem and "
        f"seed. Budget reuse: a "
        f"sampler whose proposals do not depend on the total budget proposes the same first B "
        f"trials whatever the budget, so one {max(s['budgets'])}-trial run gives the regret "
        f"at every budget (best of its first B trials).{auto} dltune: "
        f"`create_study(sampler=SAMPLERS.get(name)(seed=seed), pruner=NopPruner())` on its "
        f"in-memory storage, ask/tell. Optuna: `create_study(sampler=<Sampler>(seed=seed))` "
        f"with the sampler's defaults (v5: TPESampler multivariate with the constant liar), "
        f"in-memory storage, ask/tell, logging at ERROR and `ExperimentalWarning` ignored. "
        f"Median over seeds, then per problem (function × dim × budget) the rank of each "
        f"optimizer's median (ties averaged; regrets below {REGRET_FLOOR:.0e}, COCO's final "
        f"target precision, count as equal; a run that raised is left out of its median). "
        f"Runs go to a pool of {s['jobs']} spawned processes (longest first), each with "
        f"OMP/MKL/OPENBLAS_NUM_THREADS=1 (and `torch.set_num_threads(1)` where torch is "
        f"used), each optimizer "
        f"warmed up once per process (12 trials) so no run times its imports. CPU is "
        f"`time.process_time()` in the worker: per run from study creation to the last tell; "
        f"per trial ask + suggests + tell, the objective excluded. Raw results: "
        f"`benchmarks/_work/blackbox-{'quick-' if s['quick'] else ''}regret.json` and "
        f"`…cost.json`; rebuild with `--blackbox-report-only`."
    )


def report(regret: dict[str, Any] | None, cost: dict[str, Any] | None, rebuilt: str | None) -> str:
    """The Markdown section: targets, ranks and win rates, regrets, then costs and times."""
    reg = Regrets(regret) if regret is not None else None
    costs = Costs(cost) if cost is not None else None
    lines = ["## Black-box optimisation on BBOB: dltune's samplers vs Optuna 5's", ""]
    lines += (regret or cost or {"info": []})["info"]
    if rebuilt:
        lines.append(f"- Section rebuilt from the saved raw results by `{rebuilt}`")
    lines += ["", "### Targets", ""]
    rows = [_rank_target(reg), _tpe_target(reg)] if reg else []
    lines += md_table(["Target (issue #4)", "Measured", "Result"], rows + _cost_targets(costs))
    if reg is not None and regret is not None:
        lines += [""] + _regret_sections(reg)
        auto = _auto_section(regret)
        lines += [""] + auto if auto else []
    if costs is not None and cost is not None:
        # Its run's facts, less what the top of the section shows already.
        if regret is None:
            info = []
        elif regret["info"][:1] == cost["info"][:1]:
            info = cost["info"][1:]  # the same command ran both parts
        else:
            info = cost["info"]
        lines += [""] + _cost_sections(costs, info)
    lines += ["", "### Absolute times", ""]
    if regret is not None:
        lines += _absolute(regret) + [""]
    if costs is not None:
        lines += _cost_absolute(costs) + [""]
    if reg is not None and regret is not None:
        lines += ["### Checks", ""] + _checks(reg, regret) + ["", _setup(regret)]
    return "\n".join(lines)
