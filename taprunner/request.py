"""TAP request parameters (DALI/TAP 1.1), parsed into a typed :class:`TapRequest`.

The output formats and their RESPONSEFORMAT names come from the format registry
(:mod:`taprunner.formats.registry`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from taprunner.errors import TapUsageError
from taprunner.formats.registry import OUTPUT_FORMATS, OutputFormat

__all__ = [
    "FORMATS",
    "TapRequest",
    "Upload",
    "media_type_of",
    "parse_request",
    "parse_uploads",
]

#: RESPONSEFORMAT/FORMAT values (lower case, no blanks) to the format they select.
FORMATS: Mapping[str, OutputFormat] = {
    name: fmt for fmt in OUTPUT_FORMATS for name in fmt.accepts
}
_SHORT_NAMES = [f.capability.aliases[0] for f in OUTPUT_FORMATS]
_FORMAT_NAMES = f"{', '.join(_SHORT_NAMES[:-1])} or {_SHORT_NAMES[-1]}"
_LANGS = ("ADQL", "ADQL-2.0", "ADQL-2.1")
#: The IANA top-level media types: a RESPONSEFORMAT value ``type/subtype`` with
#: one of these is a media type (``text/xml``), others are short names
#: (``votable/td``).
_MEDIA_TOP_LEVEL = frozenset(
    {"application", "audio", "font", "image", "message", "model", "multipart"}
    | {"text", "video"}
)


def media_type_of(value: str, fmt: OutputFormat) -> str:
    """The Content-Type of a result asked for as RESPONSEFORMAT ``value``.

    DALI: a client that names a media type gets that type back (``text/xml``
    gives ``text/xml``, with its parameters); a short name (``votable``,
    ``csv``, ``votable/td``) gives the format's own media type. A text format
    (CSV, TSV) adds the charset it is written in (``;charset=utf-8``) unless
    the type names one.
    """
    top, slash, _ = value.partition("/")
    media = value if slash and top in _MEDIA_TOP_LEVEL else fmt.media_type
    if fmt.charset is None or "charset=" in media.lower():
        return media
    return f"{media};charset={fmt.charset}"


@dataclass(frozen=True, slots=True)
class Upload:
    """One ``UPLOAD`` item: table ``name`` from ``source`` (``param:x`` or a URL)."""

    name: str
    source: str


@dataclass(frozen=True, slots=True)
class TapRequest:
    """A TAP query request with defaults applied."""

    query: str
    maxrec: int
    format: OutputFormat
    uploads: tuple[Upload, ...] = ()
    #: True when the client asked for a MAXREC above the hard limit.
    maxrec_clamped: bool = False
    #: The Content-Type of the result: the requested media type when the
    #: client named one (:func:`media_type_of`), else the format's.
    requested_type: str | None = None

    @property
    def media_type(self) -> str:
        """The Content-Type of the result (sync response, async result file)."""
        return self.requested_type or media_type_of(self.format.name, self.format)


def parse_uploads(value: str | None) -> tuple[Upload, ...]:
    """``name,source;name2,source2`` (TAP 1.1 §4.3.1)."""
    if not value:
        return ()
    uploads = []
    for item in value.split(";"):
        name, sep, source = item.strip().partition(",")
        name, source = name.strip(), source.strip()
        if not sep or not name or not source:
            raise TapUsageError(f"UPLOAD item {item!r} must be 'name,URI'")
        if not name.replace("_", "a").isalnum() or not name[0].isalpha():
            raise TapUsageError(
                f"UPLOAD table name {name!r} must be a plain identifier"
            )
        uploads.append(Upload(name.lower(), source))
    if len({u.name for u in uploads}) != len(uploads):
        raise TapUsageError("UPLOAD names a table twice")
    return tuple(uploads)


def parse_request(
    params: Mapping[str, Sequence[str]], *, maxrec_default: int, maxrec_hard: int
) -> TapRequest:
    """Build a TapRequest from lowercased parameter names to their values.

    UPLOAD may be repeated (DALI): the items of all its values are merged.

    Raises
    ------
    TapUsageError
        For a missing QUERY, an unknown LANG or format, a malformed MAXREC.
    """

    def first(name: str) -> str | None:
        values = params.get(name)
        return values[0] if values else None

    request = first("request")
    if request is not None and request.lower() != "doquery":
        raise TapUsageError(f"REQUEST={request} is not supported (use doQuery)")
    lang = first("lang")
    if lang is None:
        raise TapUsageError("LANG parameter missing (use LANG=ADQL)")
    if lang.upper() not in _LANGS:
        raise TapUsageError(
            f"LANG={lang} is not supported; use one of {', '.join(_LANGS)}"
        )
    query = first("query")
    if query is None or not query.strip():
        raise TapUsageError("QUERY parameter missing or empty")
    fmt_name = first("responseformat") or first("format")
    fmt = OUTPUT_FORMATS[0]  # the default
    media_type = None
    if fmt_name:
        key = fmt_name.strip().lower().replace(" ", "")
        found = FORMATS.get(key)
        if found is None:
            raise TapUsageError(
                f"RESPONSEFORMAT={fmt_name} is not supported; use {_FORMAT_NAMES}"
            )
        fmt = found
        media_type = media_type_of(key, fmt)
    maxrec_text = first("maxrec")
    maxrec = maxrec_default
    if maxrec_text is not None:
        try:
            maxrec = int(maxrec_text)
        except ValueError:
            raise TapUsageError(f"MAXREC={maxrec_text} is not an integer") from None
        if maxrec < 0:
            raise TapUsageError("MAXREC must not be negative")
    clamped = maxrec > maxrec_hard
    return TapRequest(
        query=query,
        maxrec=min(maxrec, maxrec_hard),
        format=fmt,
        uploads=parse_uploads(";".join(v for v in params.get("upload", ()) if v)),
        maxrec_clamped=clamped,
        requested_type=media_type,
    )
