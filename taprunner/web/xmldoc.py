"""What the VOSI and DALI documents share: namespaces, standard ids, lxml helpers."""

from __future__ import annotations

from lxml import etree  # type: ignore[import-untyped,unused-ignore]

__all__ = [
    "NS_TR",
    "NS_VOSI_AVAILABILITY",
    "NS_VOSI_CAPABILITIES",
    "NS_VOSI_TABLES",
    "NS_VR",
    "NS_VS",
    "NS_XHTML",
    "NS_XSI",
    "STD_DALI_EXAMPLES",
    "STD_TAP",
    "STD_VOSI_AVAILABILITY",
    "STD_VOSI_CAPABILITIES",
    "STD_VOSI_TABLES",
    "XSI_TYPE",
    "sub",
    "to_bytes",
]

NS_VOSI_TABLES = "http://www.ivoa.net/xml/VOSITables/v1.0"
NS_VOSI_CAPABILITIES = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
NS_VOSI_AVAILABILITY = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
NS_VR = "http://www.ivoa.net/xml/VOResource/v1.0"
NS_VS = "http://www.ivoa.net/xml/VODataService/v1.1"
NS_TR = "http://www.ivoa.net/xml/TAPRegExt/v1.0"
NS_XSI = "http://www.w3.org/2001/XMLSchema-instance"
NS_XHTML = "http://www.w3.org/1999/xhtml"

XSI_TYPE = f"{{{NS_XSI}}}type"
STD_TAP = "ivo://ivoa.net/std/TAP"
STD_VOSI_CAPABILITIES = "ivo://ivoa.net/std/VOSI#capabilities"
STD_VOSI_AVAILABILITY = "ivo://ivoa.net/std/VOSI#availability"
STD_VOSI_TABLES = "ivo://ivoa.net/std/VOSI#tables-1.1"
STD_DALI_EXAMPLES = "ivo://ivoa.net/std/DALI#examples"


def to_bytes(root: etree._Element) -> bytes:
    return bytes(
        etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    )


def sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element
