"""``python -m aiouws`` is the ``aiouws`` command."""

from aiouws.cli.command import main

raise SystemExit(main())
