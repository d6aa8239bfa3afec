"""ADQL 2.1 → PostgreSQL (pg_sphere): parse, resolve names, emit SQL.

``translate`` (:mod:`.translate`) is the entry point; :mod:`.parse` is the
sqlglot dialect, :mod:`.scope` name resolution, :mod:`.emit` statements and FROM
items, :mod:`.expr` value expressions, :mod:`.geometry` the geometry functions,
:mod:`.functions` the other functions, :mod:`.sqltext` the emitted literals and
:mod:`.model` the translator's value types.
"""
