"""``aiouws tap load``: files (FITS, VOTable, CSV/TSV/ECSV, Parquet) into a
published table.

:mod:`.columns` holds what every reader produces (columns in VOTable terms, the
VOTable to PostgreSQL mapping, header metadata), :mod:`.source` what a reader
returns, :mod:`.readers` the format registry, :mod:`.fitsfile`, :mod:`.votable`,
:mod:`.textfile` and :mod:`.parquetfile` one reader each, :mod:`.copy` the COPY
writer, :mod:`.metamerge` the metadata layers, :mod:`.positions` the check of
``--position`` values and :mod:`.swap` the transaction that loads, indexes,
swaps and publishes.
"""

from __future__ import annotations

from taprunner.load.columns import LoadError
from taprunner.load.swap import LoadOptions, LoadReport, load_files

__all__ = ["LoadError", "LoadOptions", "LoadReport", "load_files"]
