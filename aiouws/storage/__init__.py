"""Storage: the job table and the database it lives in.

:mod:`.store` (``JobStore``) is the one storage class, running the SQL of
:mod:`.queries` and converting rows with :mod:`.rows`; :mod:`.schema` holds the
migrations (``sql/``) and session setup; :mod:`.database` makes every connection
from the resolved DSN; :mod:`.notify` fans the table's NOTIFYs out to waiters;
:mod:`.pgcluster` runs the embedded PostgreSQL cluster.
"""
