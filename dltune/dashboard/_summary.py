"""What a study's summary and plots are made of: response payloads, the plots' key, the
best values and the counts by outcome."""

from __future__ import annotations

import math
import threading
import zlib
from typing import NamedTuple

from dltune.trial import FrozenTrial
from dltune.trial import StudyDirection
from dltune.trial import TrialState

__all__ = ["Payload", "PlotKey", "best_values", "gzip_bytes", "json_number"]


def gzip_bytes(body: bytes) -> bytes:
    """``body`` gzip-compressed at a fast level.

    Args:
        body: The bytes to compress.

    Returns:
        A complete gzip stream (``gzip.decompress`` reads it back).

    Example:
        >>> import gzip
        >>> gzip.decompress(gzip_bytes(b"abc" * 100)) == b"abc" * 100
        True
    """
    compressor = zlib.compressobj(5, zlib.DEFLATED, 31)
    return compressor.compress(body) + compressor.flush()


class Payload:
    """A response body whose gzip is computed once, when a client first asks for it.

    Args:
        body: The uncompressed body.

    Example:
        >>> payload = Payload(b"{}")
        >>> payload.gzipped() is payload.gzipped()
        True
    """

    __slots__ = ("_gzipped", "_lock", "body")

    def __init__(self, body: bytes) -> None:
        self.body = body
        self._gzipped: bytes | None = None
        self._lock = threading.Lock()

    def gzipped(self) -> bytes:
        """The body gzip-compressed (computed on the first call).

        Returns:
            :func:`gzip_bytes` of the body.
        """
        with self._lock:
            if self._gzipped is None:
                self._gzipped = gzip_bytes(self.body)
            return self._gzipped


class PlotKey(NamedTuple):
    """What the plots of a study depend on; they are redrawn when it changes.

    Attributes:
        n_finished: Finished trials.
        n_trials: Trials in any state (a trial that starts shows in the timeline).
        n_reports: Reports of the running trials (their learning curves grow).

    Example:
        >>> PlotKey(5, 6, 2).encode()
        '5.6.2'
    """

    n_finished: int
    n_trials: int
    n_reports: int

    @classmethod
    def of(cls, trials: list[FrozenTrial]) -> PlotKey:
        """The key of a study's trials (one pass, no copying).

        Args:
            trials: The study's trials.

        Returns:
            Their key.
        """
        n_finished = 0
        n_reports = 0
        for trial in trials:
            if trial.state.is_finished():
                n_finished += 1
            elif trial.state == TrialState.RUNNING:
                n_reports += len(trial.intermediate_values)
        return cls(n_finished, len(trials), n_reports)

    def encode(self) -> str:
        """The key as the text of the ``x-dltune-plots-key`` header and ``plots_key``.

        Returns:
            ``"<n_finished>.<n_trials>.<n_reports>"``.
        """
        return f"{self.n_finished}.{self.n_trials}.{self.n_reports}"


def best_values(trials: list[FrozenTrial], directions: list[StudyDirection]) -> list[float | None]:
    """The best value per objective by ``Study.best_trial``'s rule.

    Infinities are legitimate values (``-inf`` is the best a minimised objective can get,
    ``+inf`` the worst); NaN never counts; ties go to the earliest trial.

    Args:
        trials: The study's trials in number order.
        directions: The study's directions.

    Returns:
        Per objective the best value of a COMPLETE trial, or ``None`` before one completes.

    Example:
        >>> inf = float("inf")
        >>> trials = [FrozenTrial(0, 0, TrialState.COMPLETE, [0.5]),
        ...           FrozenTrial(1, 1, TrialState.COMPLETE, [-inf])]
        >>> best_values(trials, [StudyDirection.MINIMIZE])
        [-inf]
        >>> best_values(trials, [StudyDirection.MAXIMIZE])
        [0.5]
    """
    best: list[float | None] = [None] * len(directions)
    for trial in trials:
        if trial.state != TrialState.COMPLETE or trial.values is None:
            continue
        for k, (value, direction) in enumerate(zip(trial.values, directions, strict=False)):
            if math.isnan(value):
                continue
            current = best[k]
            if current is None or (
                value > current if direction == StudyDirection.MAXIMIZE else value < current
            ):
                best[k] = value
    return best


def json_number(value: float | None) -> float | str | None:
    """A value for strict JSON: infinities as the strings ``"inf"`` and ``"-inf"``.

    Args:
        value: A number (not NaN) or ``None``.

    Returns:
        ``value`` itself, or the string for an infinity.

    Example:
        >>> [json_number(v) for v in (1.5, float("-inf"), None)]
        [1.5, '-inf', None]
    """
    if value is not None and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value
