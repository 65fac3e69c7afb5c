#!/usr/bin/env bash
# Proves that a bare core install (`pip install .`, no extras) in a fresh venv
# imports, runs `dltune --help`, ships its package data and pulls in no extra.
# Called by scripts/test.sh when CI=true or DLTUNE_TEST_BARE=1.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD
PYTHON=${PYTHON:-python3}

fail() {
    {
        echo
        echo "################################################################################"
        echo "#"
        echo "#   BARE INSTALL CHECK FAILED: $*"
        echo "#"
        echo "#   A plain 'pip install dltune' (no extras) must import and run --help."
        echo "#"
        echo "################################################################################"
        echo
    } >&2
    exit 1
}

work=$(mktemp -d /tmp/dltune-bare.XXXXXX)
trap 'rm -rf "$work"' EXIT

echo "check_bare_install.sh: installing the core (no extras) into a fresh venv" >&2
"$PYTHON" -m venv "$work/venv" || fail "'$PYTHON -m venv' failed"
vpy=$work/venv/bin/python
if ! "$vpy" -m pip install --quiet "$ROOT" >"$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    fail "'pip install .' failed (pip's output is above)"
fi

# From the temp dir and with -I, so that the source tree cannot stand in for the install.
cd "$work"
if ! "$work/venv/bin/dltune" --help >"$work/help.txt" 2>&1; then
    cat "$work/help.txt" >&2
    fail "'dltune --help' failed (its output is above)"
fi
"$vpy" -I -c "import dltune" || fail "'python -c \"import dltune\"' failed (traceback above)"

# The default path works with the core alone: a study on SQLite, resumed, read by the CLI.
"$vpy" -I - "$work/bare.db" <<'EOF' || fail "a study on the SQLite default failed with the core alone"
import sys

import dltune

url = f"sqlite:///{sys.argv[1]}"
for _ in range(2):  # the second run resumes and stops at the same study-wide budget
    study = dltune.create_study(study_name="bare", storage=url, load_if_exists=True, seed=0)
    study.optimize(lambda t: t.suggest_float("x", -1, 1) ** 2, n_trials=5)
assert len(study.trials) == 5, study.trials
EOF
"$work/venv/bin/dltune" best bare --storage "sqlite:///$work/bare.db" >/dev/null \
    || fail "'dltune best' on the bare study failed"

# Package data: py.typed and every alembic script in the source tree are installed.
site=$("$vpy" -I -c 'import os, dltune; print(os.path.dirname(dltune.__file__))')
[[ $site == "$work"/venv/* ]] || fail "dltune was imported from $site, not from the bare venv"
[[ -f $site/py.typed ]] || fail "dltune/py.typed is missing from the installed package"
if [[ -d $ROOT/dltune/storage/_migrations ]]; then
    while IFS= read -r -d '' f; do
        rel=${f#"$ROOT"/dltune/}
        [[ -f $site/$rel ]] || fail "package data dltune/$rel is missing from the installed package"
    done < <(find "$ROOT/dltune/storage/_migrations" -type f \
        \( -name '*.py' -o -name '*.mako' -o -name '*.ini' \) -not -path '*/__pycache__/*' -print0)
fi

# The core must not pull in an extra through a transitive dependency.
"$vpy" -I - <<'EOF' || fail "the core install pulled in an extra (listed above)"
import importlib.util
import sys

extras = ["torch", "sklearn", "pydantic", "rich", "pandas", "psycopg", "distributed", "optuna",
          "plotly", "matplotlib", "starlette", "uvicorn"]
found = [name for name in extras if importlib.util.find_spec(name) is not None]
if found:
    print("installed without asking for an extra:", ", ".join(found), file=sys.stderr)
    sys.exit(1)
EOF

# Without the torch extra, the trainer and `dltune tune` say how to get it.
"$vpy" -I - <<'EOF' || fail "importing dltune.torch without torch did not name the extra"
import dltune

try:
    import dltune.torch  # noqa: F401
except dltune.MissingDependencyError as exc:
    assert "pip install 'dltune[torch]'" in str(exc), exc
else:
    raise SystemExit("dltune.torch imported without torch")
EOF
printf 'study: s\nbudget: {trials: 1}\n' >"$work/tune.yaml"
if "$work/venv/bin/dltune" tune "$work/tune.yaml" >"$work/tune.txt" 2>&1; then
    fail "'dltune tune' ran without the torch extra"
fi
grep -qF "pip install 'dltune[torch]'" "$work/tune.txt" || {
    cat "$work/tune.txt" >&2
    fail "'dltune tune' without the torch extra did not name pip install 'dltune[torch]'"
}

# The dashboard's front-end files are package data too.
for f in index.html app.js style.css; do
    [[ -f $site/dashboard/static/$f ]] \
        || fail "package data dltune/dashboard/static/$f is missing from the installed package"
done

# Analysis imports on the core alone; the report and the dashboard name their extras.
"$vpy" -I -c "import dltune.analysis, dltune.dashboard" \
    || fail "importing dltune.analysis or dltune.dashboard needs an extra (traceback above)"
for cmd in "report bare" "dashboard --port 0"; do
    # shellcheck disable=SC2086  # the command's words are meant to split
    if "$work/venv/bin/dltune" $cmd --storage "sqlite:///$work/bare.db" >"$work/cmd.txt" 2>&1; then
        fail "'dltune $cmd' ran without its extra"
    fi
    grep -qE "pip install 'dltune\[(plots|dashboard)\]'" "$work/cmd.txt" || {
        cat "$work/cmd.txt" >&2
        fail "'dltune $cmd' without its extra did not name the pip install line"
    }
done

echo "check_bare_install.sh: OK (import dltune, dltune --help, a SQLite study, package data," \
    "no extras, the torch, plots and dashboard extras named where needed)" >&2
