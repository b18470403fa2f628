"""``python -m hscode``: the ``hscode`` command without its console script."""

from hscode.cli import main

main()
