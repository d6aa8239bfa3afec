"""TAP_SCHEMA: installing it, publishing tables, reading it back, the demo table.

:mod:`.tapschema` installs TAP_SCHEMA and publishes tables, :mod:`.metadata`
reads table metadata files, :mod:`.catalog` reads the published tables back as the
ADQL translator's catalogue, :mod:`.demo` loads the demo catalogue.
"""
