"""The ``aiouws`` command line: :func:`.command.main` and its parts.

:mod:`.command` parses the command line, :mod:`.admin` runs the database commands
(``db``, ``jobs``, ``cleanup``), :mod:`.serving` runs ``serve`` (one process, or
the workers of :mod:`.workers`), :mod:`.plugins` is the extension point through
which an application (e.g. TAP) adds commands and its app; :mod:`.problems` says
why the service cannot start (a cause and a remedy).
"""
