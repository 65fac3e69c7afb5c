"""User strings (parameter names, choices, worker names, titles) made safe for a drawing's text.

Records hold the strings as the user wrote them; each renderer escapes them where they enter
its text, so a parameter named ``<b>lr</b>`` or ``$cost$`` is drawn as written:

- plotly renders its text as a small HTML subset and evaluates ``%{...}`` in hover templates;
  :func:`plotly_text` turns ``&``, ``<``, ``>`` and ``%`` into character references, which
  plotly.js decodes back for display (and a ``%`` so written never starts a template field).
- matplotlib reads text between two ``$`` as math; :func:`mpl_text` escapes each ``$``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["mpl_text", "plotly_text"]

_PLOTLY = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "%": "&#37;"})


def plotly_text(value: Any) -> str:
    """``value`` as text that plotly shows literally (no markup, no template fields).

    Example:
        >>> plotly_text("<b>lr</b> 5%{y}")
        '&lt;b&gt;lr&lt;/b&gt; 5&#37;{y}'
    """
    return str(value).translate(_PLOTLY)


def mpl_text(value: Any) -> str:
    """``value`` as text that matplotlib shows literally (never as mathtext).

    Example:
        >>> mpl_text("cost $x$")
        'cost \\\\$x\\\\$'
    """
    return str(value).replace("$", r"\$")
