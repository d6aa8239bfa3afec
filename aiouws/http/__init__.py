"""The HTTP layer: aiohttp applications, handlers, parameter parsing, rendering."""
