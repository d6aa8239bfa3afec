"""The IVOA XML schemas the tests validate against, kept in ``tests/xsd/``.

Import as ``from ivoa_xsd import ...`` (``tests`` is on the path, as for testdb).
The schemas import each other by remote URL; ``xsd/catalog.xml`` maps those to
the local copies, so validation never touches the network.
"""

from __future__ import annotations

import os
from pathlib import Path

from lxml import etree

#: The directory of the schemas (see its README.md for their origin and notices).
XSD_DIR = Path(__file__).resolve().parent / "xsd"


def load_schema(name: str = "all-ivoa.xsd") -> etree.XMLSchema:
    """The schema ``XSD_DIR/name``; ``all-ivoa.xsd`` imports every IVOA schema
    (UWS, VOSI, TAPRegExt 1.0, VOResource 1.2, VOTable 1.5) at once."""
    os.environ["XML_CATALOG_FILES"] = str(XSD_DIR / "catalog.xml")
    return etree.XMLSchema(etree.parse(str(XSD_DIR / name)))
