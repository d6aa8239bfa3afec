"""Output formats: how result rows become bytes (VOTable, CSV, TSV).

:mod:`.registry` holds one entry per output format (media type, RESPONSEFORMAT
names, TAPRegExt entry, encoder, data paths): the TAP parameters, the
capabilities and the query runner all derive from it. :mod:`.fields` describes
result columns (FIELDs), :mod:`.votable` writes the VOTable documents with
:mod:`.binpack` (BINARY/BINARY2) and :mod:`.cells` (TABLEDATA and CSV cell
text), :mod:`.text` writes CSV/TSV, :mod:`.pgcopy` lets PostgreSQL's COPY write
CSV/TSV, :mod:`.arrow` packs Arrow batches.
"""
