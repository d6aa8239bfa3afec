"""The output-format registry: one entry per format, and everything derives from it."""

from __future__ import annotations

import subprocess
import sys

import pytest

from taprunner.errors import TapUsageError
from taprunner.formats.fields import field_for_pg_type
from taprunner.formats.registry import OUTPUT_FORMATS, ArrowEncoder, DataPath
from taprunner.formats.votable import VOTableEncoder
from taprunner.request import FORMATS, parse_request
from taprunner.web.capabilities import DEFAULT_OUTPUT_FORMATS

FIELDS = [field_for_pg_type("id", "int8"), field_for_pg_type("name", "text")]


def _request(fmt: str | None) -> object:
    params = {"lang": ["ADQL"], "query": ["SELECT 1"]}
    if fmt is not None:
        params["responseformat"] = [fmt]
    return parse_request(params, maxrec_default=10, maxrec_hard=100).format


def test_names_are_unique_and_every_accepted_value_selects_one_format() -> None:
    assert len({f.name for f in OUTPUT_FORMATS}) == len(OUTPUT_FORMATS)
    accepted = [name for f in OUTPUT_FORMATS for name in f.accepts]
    assert len(accepted) == len(set(accepted)) == len(FORMATS)
    for fmt in OUTPUT_FORMATS:
        for name in fmt.accepts:
            assert name == name.lower().replace(" ", "")
            assert _request(name) is fmt
            assert _request(name.upper()) is fmt


def test_advertised_mime_types_and_aliases_are_accepted() -> None:
    for fmt in OUTPUT_FORMATS:
        for name in (fmt.capability.mime, *fmt.capability.aliases):
            assert FORMATS[name.lower().replace(" ", "")] is fmt
    assert DEFAULT_OUTPUT_FORMATS == tuple(f.capability for f in OUTPUT_FORMATS)


def test_default_format_is_the_first_entry() -> None:
    assert _request(None) is OUTPUT_FORMATS[0]
    assert _request("") is OUTPUT_FORMATS[0]
    with pytest.raises(
        TapUsageError, match="use votable, votable/b, votable/td, csv.* tsv"
    ):
        _request("application/fits")


def test_data_paths_fit_the_encoders() -> None:
    for fmt in OUTPUT_FORMATS:
        assert fmt.takes(DataPath.CURSOR)
        assert (fmt.copy is not None) == fmt.takes(DataPath.COPY)
        encoder = fmt.encoder(FIELDS, query="SELECT 1", maxrec_clamped=True)
        assert encoder.header()
        if fmt.takes(DataPath.ARROW):
            assert isinstance(encoder, ArrowEncoder)
        if isinstance(encoder, VOTableEncoder):
            assert fmt.takes(DataPath.ARROW) == (encoder.packer is not None)
            assert b"MAXREC lowered" in encoder.header()
            assert fmt.media_type == "application/x-votable+xml"


def _python(code: str) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def test_pyarrow_is_imported_only_for_a_parquet_result() -> None:
    """A runner and the server start without pyarrow's 45 MB of imports."""
    code = (
        "import sys\n"
        "import taprunner.query.job, taprunner.web.app\n"
        "from taprunner.formats.fields import field_for_pg_type\n"
        "from taprunner.request import FORMATS\n"
        "print('pyarrow' in sys.modules)\n"
        "f = [field_for_pg_type('id', 'int8')]\n"
        "FORMATS['parquet'].encoder(f, query='q', maxrec_clamped=False)\n"
        "print('pyarrow' in sys.modules)\n"
    )
    assert _python(code).split() == ["False", "True"]


def test_without_pyarrow_parquet_is_neither_accepted_nor_advertised() -> None:
    code = (
        "import sys\n"
        "sys.modules['pyarrow'] = None  # as if not installed\n"
        "from taprunner.formats.registry import OUTPUT_FORMATS\n"
        "from taprunner.request import FORMATS\n"
        "from taprunner.web.capabilities import DEFAULT_OUTPUT_FORMATS\n"
        "print([f.name for f in OUTPUT_FORMATS], 'parquet' in FORMATS,\n"
        "      any('parquet' in f.mime for f in DEFAULT_OUTPUT_FORMATS))\n"
    )
    out = _python(code)
    assert out == "['binary2', 'binary', 'tabledata', 'csv', 'tsv'] False False"
    assert "parquet" in FORMATS  # here, pyarrow is installed (the test extra)
    assert FORMATS["application/vnd.apache.parquet"].extension == "parquet"
