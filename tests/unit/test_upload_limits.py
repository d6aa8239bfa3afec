"""An upload's size is checked before it is parsed: declared value sizes, values
(rows x FIELDs) and bytes at the declared sizes, each naming its setting."""

from __future__ import annotations

import io
import resource
import time

import numpy as np
import pytest
from astropy.io.votable import from_table  # type: ignore[import-untyped]
from astropy.table import Table  # type: ignore[import-untyped]

from taprunner.errors import TapUsageError
from taprunner.query.uploadlimits import UploadLimits, check_upload
from taprunner.settings import TapSettings

#: The 262-byte upload that cost the server 330 MB: one row, one short cell, a
#: FIELD declaring five million doubles.
HOSTILE = (
    b'<?xml version="1.0"?><VOTABLE version="1.4" '
    b'xmlns="http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
    b'<FIELD name="a" datatype="double" arraysize="5000000"/>'
    b"<DATA><TABLEDATA><TR><TD>1</TD></TR></TABLEDATA></DATA></TABLE>"
    b"</RESOURCE></VOTABLE>"
)
DEFAULTS = UploadLimits.of(TapSettings())


def rows_table(rows: int, serialization: str = "tabledata") -> bytes:
    table = Table({"a": np.arange(rows, dtype=np.int32), "b": np.ones(rows)})
    out = io.BytesIO()
    from_table(table).to_xml(out, tabledata_format=serialization)
    return out.getvalue()


def test_the_hostile_upload_is_refused_before_anything_is_expanded() -> None:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with pytest.raises(TapUsageError) as caught:
        check_upload("t", HOSTILE, DEFAULTS)
    assert time.perf_counter() - start < 0.5
    assert str(caught.value) == (
        "upload 't': FIELD 'a' declares values of 40000000 bytes, more than the"
        " limit of 4194304 (tap_value_bytes)"
    )
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 20_000  # KB
    assert caught.value.status == 400


@pytest.mark.parametrize("serialization", ["tabledata", "binary2"])
def test_values_over_the_cell_limit_are_refused(serialization: str) -> None:
    data = rows_table(500, serialization)
    check_upload("t", data, UploadLimits(1000, 1000, 10**6))  # 1000 values
    with pytest.raises(TapUsageError, match=r"more than the limit of 999 \(tap_upl"):
        check_upload("t", data, UploadLimits(1000, 999, 10**6))


def test_bytes_at_declared_sizes_over_the_limit_are_refused() -> None:
    data = rows_table(100)  # 100 x (4 + 8) bytes
    check_upload("t", data, UploadLimits(1000, 10**6, 1200))
    with pytest.raises(TapUsageError, match=r"take 1200 bytes .* \(tap_upload_data"):
        check_upload("t", data, UploadLimits(1000, 10**6, 1199))


def test_what_lxml_cannot_read_is_left_to_the_parser() -> None:
    check_upload("t", b"<VOTABLE>", DEFAULTS)
    check_upload("t", b"not xml at all", DEFAULTS)


@pytest.mark.parametrize(
    "name",
    ["value_bytes", "sync_bytes", "result_bytes", "upload_cells", "upload_data_bytes"],
)
def test_size_limits_must_be_positive(name: str) -> None:
    from aiouws.config import ConfigError, Settings

    with pytest.raises(ConfigError, match=f"tap_{name} must be positive"):
        TapSettings.for_service(Settings(), **{name: 0})
    env = {f"AIOUWS_TAP_{name.upper()}": "12345"}
    assert getattr(TapSettings.load(Settings(), None, env), name) == 12345
