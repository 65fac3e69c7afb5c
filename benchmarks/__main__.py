"""``python -m benchmarks [NAME|all] [--quick]``: run, update RESULTS.md.

``all`` runs the framework benchmarks (overhead, throughput: ~10 minutes). The search-quality
benchmarks run only when named: ``mnist1d`` (~35 min, tuning against Optuna's TPE+Hyperband),
``blackbox`` (BBOB functions, dltune's samplers against Optuna's, and their cost per trial),
``divergence`` (whether learning diverged trials as bad helps), ``samplers-mnist1d`` (the
samplers on the trainer's mixed, conditional space), ``multifidelity`` (~80 min: pruners,
BOHB-style and PBT against Optuna's TPE+Hyperband and TPE+SuccessiveHalving) and
``analysis`` (~10 min: ``dltune report`` and the dashboard on a 10,000-trial study, against
Optuna's own plotting), ``scale`` (a 100,000-trial study on SQLite and PostgreSQL: load_study,
best_trial, ask latency, against Optuna) and ``reliability`` (the fault-injection scenarios'
figures and parallel efficiency at 1-8 workers, against Optuna).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from benchmarks import analysis
from benchmarks import blackbox
from benchmarks import divergence
from benchmarks import mnist1d
from benchmarks import mnist1d_samplers
from benchmarks import multifidelity
from benchmarks import overhead
from benchmarks import reliability
from benchmarks import scale
from benchmarks import throughput
from benchmarks._common import RESULTS_PATH
from benchmarks._common import load_average
from benchmarks._common import write_section

BENCHMARKS = {
    "overhead": overhead,
    "throughput": throughput,
    "mnist1d": mnist1d,
    "divergence": divergence,
    "blackbox": blackbox,
    "samplers-mnist1d": mnist1d_samplers,
    "multifidelity": multifidelity,
    "analysis": analysis,
    "scale": scale,
    "reliability": reliability,
}
#: What ``all`` (the default) runs: not the long tuning benchmark (mnist1d).
IN_ALL = ("overhead", "throughput")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure dltune and Optuna side by side and update the benchmark's section "
        f"of {RESULTS_PATH.name}. PostgreSQL: $DLTUNE_BENCH_POSTGRES_URL or "
        "$DLTUNE_TEST_POSTGRES_URL if set, else a throwaway local cluster.",
    )
    parser.add_argument(
        "which",
        nargs="?",
        choices=[*BENCHMARKS, "all"],
        default="all",
        help=f"the benchmark to run (default: all = {', '.join(IN_ALL)}; the others run only "
        "when named)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a smoke test with few trials and one repetition; prints the section and writes "
        "RESULTS.md only with --output",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=None,
        help=f"the results file to update (default: {RESULTS_PATH}, not written with --quick)",
    )
    for module in BENCHMARKS.values():
        module.add_arguments(parser)
    return parser


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')} load {load_average()}] {message}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; print each section and write it to the results file."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    command = " ".join(["python -m benchmarks", *argv])
    names = list(IN_ALL) if args.which == "all" else [args.which]
    output = args.output if args.output is not None else None if args.quick else RESULTS_PATH
    for name in names:
        section = BENCHMARKS[name].run(args, command, _log)
        print(section + "\n")
        if output is not None:
            write_section(name, section, output)
            _log(f"wrote the {name} section of {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
