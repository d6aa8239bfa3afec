"""The service's VOResource record, ready for registration (``/tap/resource``).

A VODataService ``vs:CatalogService`` as registries harvest it: the
RegistryInterface root ``ri:Resource`` with title, identifier, curation
(publisher, contact) and content from the operator's settings (``tap_title``,
``tap_description``, ``tap_publisher``, ``tap_contact_*``, ``tap_ivoid``),
then the capabilities of ``/tap/capabilities`` (TAP and VOSI, DALI examples)
and the tableset of ``/tap/tables``, both rendered by their own modules.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

from taprunner.settings import TapSettings
from taprunner.web.xmldoc import NS_TR, NS_VR, NS_VS, NS_XSI, XSI_TYPE, sub, to_bytes

__all__ = ["NS_RI", "ResourceRecord", "resource_document", "service_ivoid"]

NS_RI = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
#: The subject of the record's content (UAT: the virtual observatory).
SUBJECT = "virtual-observatory"


@dataclass(frozen=True, slots=True)
class ResourceRecord:
    """What the record says beyond the settings: where and since when."""

    tap_url: str
    """The TAP base URL (also the record's reference URL)."""
    created: datetime
    """When the service was first set up (``created``)."""
    updated: datetime
    """When its metadata last changed (``updated``)."""


def service_ivoid(tap: TapSettings, tap_url: str) -> str:
    """``tap_ivoid``, or a placeholder under the reserved authority
    ``x-unregistered`` that names the host (to be replaced for registration)."""
    if tap.ivoid:
        return tap.ivoid
    host = urlsplit(tap_url).hostname or "localhost"
    return f"ivo://x-unregistered/{host}/tap"


def resource_document(
    tap: TapSettings,
    record: ResourceRecord,
    capabilities: bytes,
    tableset: bytes | None,
) -> bytes:
    """The ``ri:Resource`` record: ``capabilities`` is a VOSI capabilities
    document, ``tableset`` a VOSI tableset (their children are taken over), or
    None to leave it out (it is optional in a vs:CatalogService)."""
    root = etree.Element(
        f"{{{NS_RI}}}Resource",
        nsmap={"ri": NS_RI, "vr": NS_VR, "vs": NS_VS, "tr": NS_TR, "xsi": NS_XSI},
    )
    root.set(XSI_TYPE, "vs:CatalogService")
    root.set("created", _iso(record.created))
    root.set("updated", _iso(record.updated))
    root.set("status", "active")
    sub(root, "title", tap.title)
    sub(root, "identifier", service_ivoid(tap, record.tap_url))
    curation = sub(root, "curation")
    sub(curation, "publisher", tap.publisher or tap.title)
    contact = sub(curation, "contact")
    sub(contact, "name", tap.contact_name or tap.publisher or tap.title)
    if tap.contact_email:
        sub(contact, "email", tap.contact_email)
    content = sub(root, "content")
    sub(content, "subject", SUBJECT)
    sub(content, "description", tap.description)
    sub(content, "referenceURL", record.tap_url)
    sub(content, "type", "Catalog")
    sub(content, "contentLevel", "Research")
    for capability in etree.fromstring(capabilities):
        root.append(capability)
    if tableset is not None:
        tables = sub(root, "tableset")
        for schema in etree.fromstring(tableset):
            tables.append(schema)
    return to_bytes(root)


def _iso(moment: datetime) -> str:
    """An xs:dateTime in UTC, whole seconds (VOResource's UTCTimestamp)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
