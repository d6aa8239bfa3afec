"""``python -m aiouws``: the generic ``aiouws`` command, without plug-ins.

The ``aiouws`` console script is this command with TAP's plug-in
(``python -m taprunner``).
"""

from aiouws.cli.command import main

raise SystemExit(main())
