"""Alembic environment for dltune: migrations run only on a connection dltune passes in.

dltune configures alembic in code (``script_location`` points at this directory) and runs each
upgrade inside its own locked transaction, so there is no alembic.ini and no offline mode.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection


def run_migrations() -> None:
    """Run the pending migrations on the connection dltune put in the alembic config."""
    connection = context.config.attributes.get("connection")
    if not isinstance(connection, Connection):
        raise RuntimeError(
            "dltune migrations run through dltune.storage.upgrade_storage(url) or "
            "`dltune storage upgrade --storage URL`, not through the alembic command line"
        )
    context.configure(connection=connection, target_metadata=None)
    with context.begin_transaction():
        context.run_migrations()


if hasattr(context, "config"):  # run by alembic; a plain import (doctest collection) is a no-op
    run_migrations()
