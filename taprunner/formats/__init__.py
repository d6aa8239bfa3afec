"""Output formats: how result rows become bytes (VOTable, CSV, TSV).

:mod:`.fields` describes result columns (FIELDs), :mod:`.votable` writes the
VOTable documents with :mod:`.binpack` (BINARY/BINARY2) and :mod:`.cells`
(TABLEDATA and CSV cell text), :mod:`.text` writes CSV/TSV, :mod:`.pgcopy` lets
PostgreSQL's COPY write CSV/TSV, :mod:`.arrow` packs Arrow batches.
"""
