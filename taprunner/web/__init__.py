"""TAP's server side: the aiohttp application, endpoints, VOSI and the fast lane.

:mod:`.app` composes the standalone service, :mod:`.endpoints` serves sync
queries and the VOSI resources: :mod:`.vosi` renders the tables and availability
documents, :mod:`.capabilities` the capabilities (derived from the format
registry and the ADQL function table), :mod:`.examples` the DALI examples, with
the namespaces and helpers of :mod:`.xmldoc`. :mod:`.fastlane` runs small async
queries in the server;
:mod:`.state` holds what they share (the sync pool, the catalogue cache).
Imports go app → endpoints, fastlane → state.
"""
