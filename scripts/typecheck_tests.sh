#!/usr/bin/env bash
# mypy (strict, the project's settings) over the tests, one folder at a time: each test folder
# is its own import root (pytest's rootdir-less layout), and two of them hold a conftest.py,
# which mypy would otherwise see as one module defined twice. Called by `make check`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
status=0
while IFS= read -r dir; do
    files=("$dir"/*.py)
    [[ -e ${files[0]} ]] || continue
    (cd "$dir" && "$root/.venv/bin/mypy" --config-file "$root/pyproject.toml" \
        --cache-dir "$root/.mypy_cache/tests" --strict ./*.py) \
        || status=1
done < <(find tests -type d -not -name __pycache__ | sort)
exit $status
