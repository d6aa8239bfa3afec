"""ADQL 2.1 → PostgreSQL (pg_sphere): parse, resolve names, emit SQL.

``translate`` (:mod:`.translate`) is the entry point; :mod:`.parse` is the
sqlglot dialect, :mod:`.scope` name resolution, :mod:`.emit` statements and FROM
items, :mod:`.expr` value expressions. :mod:`.functions` is the table of the
functions (the geometry ones from :mod:`.geometry`), each a
:class:`~.features.FunctionDef` with its translation and TAPRegExt feature;
:mod:`.features` also lists the syntax features. The capabilities advertise
exactly this table. :mod:`.sqltext` holds the emitted literals and
:mod:`.model` the translator's value types.
"""
