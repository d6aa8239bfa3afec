"""taprunner: TAP 1.1 on aiouws, as a plug-in of the generic UWS library.

Rooms (the runner side never imports the web side):

- :mod:`taprunner.adql`: ADQL 2.1 → PostgreSQL (pg_sphere) translation;
- :mod:`taprunner.formats`: output formats and their encoders;
- :mod:`taprunner.schema`: TAP_SCHEMA, publishing tables, the demo catalogue;
- :mod:`taprunner.query`: running queries (the runner process's side);
- :mod:`taprunner.web`: the aiohttp application, endpoints, VOSI, fast lane;
- :mod:`taprunner.request` (TAP parameters) and :mod:`taprunner.errors` are shared.
"""
