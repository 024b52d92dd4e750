"""``python -m forcing.bench [sections...] [flags]``: see :mod:`forcing.bench.cli`."""

from forcing.bench.cli import main

if __name__ == "__main__":
    main()
