// Job pages: the behaviour (live phase through UWS WAIT) is added by
// /static/uws.js; pages work without it. See aiouws/http/pages.py for the
// element ids and classes it may rely on.
"use strict";
