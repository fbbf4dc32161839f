"""``python -m eventlog``: the command line (see :mod:`eventlog._cli`)."""

from eventlog._cli import main

if __name__ == "__main__":
    main()
