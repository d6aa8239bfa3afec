"""TAP's server side: the aiohttp application, endpoints, VOSI and the fast lane.

:mod:`.app` composes the standalone service, :mod:`.endpoints` serves sync
queries and the VOSI resources rendered by :mod:`.vosi`, :mod:`.fastlane` runs
small async queries in the server; :mod:`.state` holds what they share (the
sync pool, the catalogue cache). Imports go app → endpoints, fastlane → state.
"""
