"""Running TAP queries: the runner side of TAP (never imports the web side).

:mod:`.job` is the ``tap`` job kind's entry point in a runner process,
:mod:`.execute` runs one query, choosing the data path its output format takes;
:mod:`.streaming` streams a result from a cursor or through COPY,
:mod:`.columnar` fetches big binary results as Arrow batches, :mod:`.caches`
keeps prepared statements and translations, :mod:`.outcome` holds what a run
yields and how it fails. :mod:`.uploads` loads TAP uploads into temporary tables
(:mod:`.uploadstream` reads the VOTables as they stream, :mod:`.uploadcopy`
turns numeric BINARY/BINARY2 rows into binary COPY data, :mod:`.uploadfill`
feeds the COPY, :mod:`.uploadparse` parses FITS-serialised ones whole and
holds the types, :mod:`.uploadlimits` their sizes, :mod:`.urlfetch` fetches
them from public addresses only), :mod:`.heap` keeps the C heap warm while big
results stream.
"""
