"""``python -m aiouws`` is the ``aiouws`` command."""

from .cli import main

raise SystemExit(main())
