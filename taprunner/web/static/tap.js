// TAP pages (query page, tables, job preview): behaviour added by the browser
// helper; every page works without it. Structure: taprunner/web/pages.py.
"use strict";
