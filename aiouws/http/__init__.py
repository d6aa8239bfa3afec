"""The HTTP layer: aiohttp applications, handlers, parameter parsing, rendering.

``create_app`` builds the standalone service; ``uws_context`` and ``uws_subapp``
mount UWS job lists inside any aiohttp application.
"""

from aiouws.http.app import create_app, uws_context, uws_subapp

__all__ = ["create_app", "uws_context", "uws_subapp"]
