"""Running TAP queries: the runner side of TAP (never imports the web side).

:mod:`.job` is the ``tap`` job kind's entry point in a runner process,
:mod:`.execute` runs one query and streams its result, :mod:`.columnar` fetches
big binary results as Arrow batches, :mod:`.uploads` loads TAP uploads
(:mod:`.urlfetch` fetches them from public addresses only), :mod:`.heap` keeps
the C heap warm while big results stream.
"""
