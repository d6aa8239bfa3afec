"""The VOSI capabilities document of the TAP service (VOSI 1.1, TAPRegExt 1.0).

Its defaults derive from the runner side: the output formats from the format
registry (:mod:`taprunner.formats.registry`), the language features and UDFs
from the ADQL function table (:func:`taprunner.adql.functions.language_features`),
so the document lists exactly what the service accepts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from taprunner.adql.features import (
    FEATURES_GEO,
    FEATURES_UDF,
    TAPREGEXT,
    LanguageFeature,
)
from taprunner.adql.functions import language_features
from taprunner.adql.udfs import SPHERE_UDFS
from taprunner.formats.registry import OUTPUT_FORMATS, TapRegExtFormat
from taprunner.web.xmldoc import (
    NS_TR,
    NS_VOSI_CAPABILITIES,
    NS_VR,
    NS_VS,
    NS_XSI,
    STD_DALI_EXAMPLES,
    STD_TAP,
    STD_VOSI_AVAILABILITY,
    STD_VOSI_CAPABILITIES,
    STD_VOSI_TABLES,
    XSI_TYPE,
    sub,
    to_bytes,
)

__all__ = [
    "DEFAULT_LANGUAGE_FEATURES",
    "DEFAULT_OUTPUT_FORMATS",
    "DEFAULT_UDFS",
    "DEFAULT_UPLOAD_METHODS",
    "NO_GEOMETRY_LANGUAGE_FEATURES",
    "NO_GEOMETRY_UDFS",
    "capabilities_document",
]

_ADVERTISED = language_features()
DEFAULT_LANGUAGE_FEATURES: Mapping[str, tuple[LanguageFeature, ...]] = {
    kind: members for kind, members in _ADVERTISED.items() if kind != FEATURES_UDF
}
"""ADQL 2.1 optional features the translator supports, by TAPRegExt feature type
(from the translator's function table and syntax features)."""
NO_GEOMETRY_LANGUAGE_FEATURES: Mapping[str, tuple[LanguageFeature, ...]] = {
    kind: members
    for kind, members in DEFAULT_LANGUAGE_FEATURES.items()
    if kind != FEATURES_GEO
}
"""The same without the geometry functions: for a database without pg_sphere."""
DEFAULT_UDFS: tuple[LanguageFeature, ...] = _ADVERTISED.get(FEATURES_UDF, ())
"""The user-defined functions the translator supports, with their signatures."""
NO_GEOMETRY_UDFS: tuple[LanguageFeature, ...] = tuple(
    f for f in DEFAULT_UDFS if f.form.partition("(")[0] not in SPHERE_UDFS
)
"""The same without those that need pg_sphere (HEALPix)."""

DEFAULT_OUTPUT_FORMATS: tuple[TapRegExtFormat, ...] = tuple(
    f.capability for f in OUTPUT_FORMATS
)
"""Output formats in RESPONSEFORMAT order (the format registry's); the first one
is the default."""

DEFAULT_UPLOAD_METHODS: tuple[str, ...] = (
    f"{TAPREGEXT}#upload-inline",
    f"{TAPREGEXT}#upload-http",
    f"{TAPREGEXT}#upload-https",
)


def capabilities_document(
    base_url: str,
    *,
    upload_limit_bytes: int,
    max_rec_default: int,
    max_rec_hard: int,
    retention_default_s: int,
    retention_hard_s: int,
    execution_default_s: int,
    execution_hard_s: int,
    output_formats: Sequence[TapRegExtFormat] = DEFAULT_OUTPUT_FORMATS,
    udfs: Sequence[LanguageFeature] = DEFAULT_UDFS,
    language_features: Mapping[str, Sequence[LanguageFeature]] = (
        DEFAULT_LANGUAGE_FEATURES
    ),
    upload_methods: Sequence[str] = DEFAULT_UPLOAD_METHODS,
    security_methods: Sequence[str | None] = (None,),
) -> bytes:
    """Render the VOSI ``vosi:capabilities`` document of the TAP service.

    ``base_url`` is the TAP base URL without a trailing slash. ``udfs`` are
    the user-defined functions, with ``form`` the ADQL signature (TAPRegExt
    section 2.3). ``security_methods`` lists the security method standardIDs,
    ``None`` meaning anonymous access; each gets its own interface, as
    VOResource allows one securityMethod per interface.
    """
    base_url = base_url.rstrip("/")
    root = etree.Element(
        f"{{{NS_VOSI_CAPABILITIES}}}capabilities",
        nsmap={
            "vosi": NS_VOSI_CAPABILITIES,
            "vr": NS_VR,
            "vs": NS_VS,
            "tr": NS_TR,
            "xsi": NS_XSI,
        },
    )
    tap = _capability(root, STD_TAP, "tr:TableAccess")
    _interfaces(tap, base_url, security_methods, std=True)
    features = dict(language_features)
    if udfs:
        features[FEATURES_UDF] = tuple(udfs)
    _language(tap, features)
    for output_format in output_formats:
        _output_format(tap, output_format)
    for method in upload_methods:
        sub(tap, "uploadMethod").set("ivo-id", method)
    _limits(tap, "retentionPeriod", retention_default_s, retention_hard_s)
    _limits(tap, "executionDuration", execution_default_s, execution_hard_s)
    _limits(tap, "outputLimit", max_rec_default, max_rec_hard, unit="row")
    _limits(tap, "uploadLimit", upload_limit_bytes, upload_limit_bytes, unit="byte")
    for standard_id, path in (
        (STD_VOSI_CAPABILITIES, "capabilities"),
        (STD_VOSI_AVAILABILITY, "availability"),
        (STD_VOSI_TABLES, "tables"),
    ):
        capability = _capability(root, standard_id)
        _interfaces(capability, f"{base_url}/{path}", security_methods)
    examples = _capability(root, STD_DALI_EXAMPLES)
    interface = sub(examples, "interface")
    interface.set(XSI_TYPE, "vr:WebBrowser")
    sub(interface, "accessURL", f"{base_url}/examples").set("use", "full")
    return to_bytes(root)


def _capability(
    root: etree._Element, standard_id: str, xsi_type: str | None = None
) -> etree._Element:
    capability = sub(root, "capability")
    capability.set("standardID", standard_id)
    if xsi_type:
        capability.set(XSI_TYPE, xsi_type)
    return capability


def _interfaces(
    capability: etree._Element,
    url: str,
    security_methods: Sequence[str | None],
    *,
    std: bool = False,
) -> None:
    for method in security_methods:
        interface = sub(capability, "interface")
        interface.set(XSI_TYPE, "vs:ParamHTTP")
        if std:
            interface.set("role", "std")
            interface.set("version", "1.1")
        sub(interface, "accessURL", url).set("use", "base" if std else "full")
        if method is not None:
            sub(interface, "securityMethod").set("standardID", method)


def _language(
    capability: etree._Element, features: Mapping[str, Sequence[LanguageFeature]]
) -> None:
    language = sub(capability, "language")
    sub(language, "name", "ADQL")
    for version in ("2.0", "2.1"):
        sub(language, "version", version).set(
            "ivo-id", f"ivo://ivoa.net/std/ADQL#v{version}"
        )
    sub(language, "description", "The Astronomical Data Query Language")
    for feature_type, members in features.items():
        feature_list = sub(language, "languageFeatures")
        feature_list.set("type", feature_type)
        for feature in members:
            element = sub(feature_list, "feature")
            sub(element, "form", feature.form)
            if feature.description:
                sub(element, "description", feature.description)


def _output_format(capability: etree._Element, output_format: TapRegExtFormat) -> None:
    element = sub(capability, "outputFormat")
    if output_format.ivo_id:
        element.set("ivo-id", output_format.ivo_id)
    sub(element, "mime", output_format.mime)
    for alias in output_format.aliases:
        sub(element, "alias", alias)


def _limits(
    capability: etree._Element,
    tag: str,
    default: int,
    hard: int,
    *,
    unit: str | None = None,
) -> None:
    element = sub(capability, tag)
    for name, value in (("default", default), ("hard", hard)):
        limit = sub(element, name, str(value))
        if unit is not None:
            limit.set("unit", unit)
