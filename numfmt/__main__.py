"""``python -m numfmt``: the command line (``numfmt.cli.main``)."""

from numfmt.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
