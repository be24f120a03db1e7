"""Build the benchmark suite's real datasets (``real_data``); see ``--help``."""

from real_data.build import main

if __name__ == "__main__":
    raise SystemExit(main())
