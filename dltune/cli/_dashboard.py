"""``dltune dashboard``."""

from __future__ import annotations

import click

from dltune.cli._commands import cli
from dltune.cli._common import _open_storage
from dltune.cli._common import _storage_option
from dltune.cli._common import _verbose_option
from dltune.cli._common import mask_url


def _exposed_warning(host: str, port: int, url: str) -> str:
    line = "#" * 78
    return "\n".join(
        [
            line,
            f"#  WARNING: listening on {host}, not only on this machine (127.0.0.1).",
            f"#  Anyone who can reach port {port} reads every study in {mask_url(url)}:",
            "#  the dashboard has no authentication. Prefer the default --host 127.0.0.1",
            "#  and an SSH tunnel (ssh -L 8080:127.0.0.1:8080 HOST) to look from elsewhere.",
            line,
        ]
    )


@cli.command()
@_storage_option
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address to listen on. Any but 127.0.0.1/localhost lets other machines read "
    "every study: there is no authentication.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8080,
    show_default=True,
    help="The TCP port; 0 picks a free one.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    metavar="NAME",
    multiple=True,
    help="Also answer requests for this host name (repeatable), such as a DNS alias others "
    "use to reach this machine; its own names and addresses are always answered. '*' answers "
    "any name, which gives up the defence against DNS rebinding.",
)
@click.option(
    "--poll-seconds",
    type=click.FloatRange(min=0.1, max=3600),
    default=2.0,
    show_default=True,
    help="How often open pages ask for new trials.",
)
@_verbose_option
def dashboard(
    url: str, host: str, port: int, allow_hosts: tuple[str, ...], poll_seconds: float
) -> None:
    """Serve a live web dashboard of the studies in the storage, until Ctrl-C.

    It shows each study's summary, plots that update as trials finish, and a sortable,
    filterable trial table with CSV export; each trial has a page with its learning curve.
    The storage is opened read-only: the dashboard never writes to it, so it is safe to run
    next to workers. Needs: pip install 'dltune[dashboard]'.
    """
    from dltune.dashboard import is_loopback
    from dltune.dashboard import serve

    with _open_storage(url, read_only=True):  # the command line's own messages for a bad one
        pass
    if not is_loopback(host):
        click.echo(_exposed_warning(host, port, url), err=True)

    def ready(link: str) -> None:
        click.echo(f"dltune dashboard of {mask_url(url)} (read-only) at {link}")
        click.echo("press Ctrl-C to stop", err=True)

    serve(url, host, port, poll_seconds=poll_seconds, allowed_hosts=allow_hosts, on_ready=ready)
