"""A live web dashboard of the studies in a storage: ``dltune dashboard``.

Needs the dashboard extra (``pip install 'dltune[dashboard]'``) to serve; importing this
package does not import starlette or uvicorn, so :func:`find_dashboard` works without them.

The storage is opened read-only. Pages: ``/`` (the studies), ``/studies/NAME`` (summary,
live plots, the trial table), ``/studies/NAME/trials/N`` (one trial). NAME is the study's
name percent-encoded, with a ``~`` in front of ``.``, ``..`` and names starting with ``~``
(browsers drop ``.`` and ``..`` segments). The JSON API under ``/api/`` feeds them:

- ``GET /api/studies``: per study its name, directions, trial counts by outcome, best
  value per objective and start time;
- ``GET /api/studies/NAME``: the same for one study;
- ``GET /api/studies/NAME/trials?after=CURSOR``: the trials that may have changed since the
  cursor of the previous answer (all of them without one), a new ``cursor``, the study's
  ``params``, ``directions`` and ``summary``;
- ``GET /api/studies/NAME/plots``: ``[{"kind", "title", "notes", "figure"}]``, plotly
  figures, redrawn as trials start, report and finish;
- ``GET /api/studies/NAME/trials/N``: one trial with its reports and learning curve;
- ``GET /api/studies/NAME/trials.csv?state=S&q=TEXT``: the (filtered) table as CSV.

Example:
    >>> find_dashboard("sqlite:///no-dashboard-serves-this.db") is None
    True
"""

from __future__ import annotations

from dltune.dashboard._discovery import find_dashboard
from dltune.dashboard._serve import create_app
from dltune.dashboard._serve import is_loopback
from dltune.dashboard._serve import serve

__all__ = ["create_app", "find_dashboard", "is_loopback", "serve"]
