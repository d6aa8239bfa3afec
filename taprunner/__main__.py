"""``python -m taprunner``: the ``aiouws`` command with TAP (``taprunner.cli``)."""

from taprunner.cli import main

raise SystemExit(main())
