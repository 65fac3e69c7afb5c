"""``python -m dltune``: the same command line as the ``dltune`` script."""

from dltune.cli import main

if __name__ == "__main__":
    main()
