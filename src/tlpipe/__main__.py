"""``python -m tlpipe``: the ``tlpipe`` command, for launchers that start modules (``torchrun -m tlpipe train``)."""

from tlpipe.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
