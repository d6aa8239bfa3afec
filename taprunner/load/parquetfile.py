"""Parquet (pyarrow, the ``parquet`` extra): row groups read as record batches.

Metadata comes from a VOParquet header (the ``IVOA.VOTable-Parquet.content``
VOTable, as ``RESPONSEFORMAT=parquet`` writes it) or from astropy's
``table_meta_yaml`` (``Table.write(..., format="parquet")``), whose masked
columns are stored as ``name`` plus ``name.mask``: the mask makes NULLs.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np

from taprunner.load.columns import LoadError, SourceColumn, numpy_datatype
from taprunner.load.source import Batches, Source

__all__ = ["open_parquet"]

_VOPARQUET = b"IVOA.VOTable-Parquet.content"
_ASTROPY = b"table_meta_yaml"
_MASK = ".mask"


def open_parquet(path: Path) -> Source:
    """The rows of the Parquet file ``path`` (a :class:`Source` of batches)."""
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    names = list(schema.names)
    masks = {
        n[: -len(_MASK)]: n
        for n in names
        if n.endswith(_MASK) and n[: -len(_MASK)] in names
    }
    meta, description = _header(schema.metadata or {})
    columns = tuple(
        _column(field, meta.get(field.name, {}))
        for field in schema
        if field.name not in masks.values()
    )
    data_names = [c.name for c in columns]
    times = {c.name for c in columns if c.xtype == "timestamp"}
    return Source(
        path=path,
        columns=columns,
        description=description,
        batches=lambda rows: _batches(parquet, data_names, masks, times, rows),
    )


def _column(field: Any, meta: dict[str, str]) -> SourceColumn:
    import pyarrow as pa

    datatype, arraysize, xtype = _datatype(field.name, field.type, pa)
    return SourceColumn(
        name=field.name,
        datatype=datatype,
        arraysize=arraysize,
        xtype=xtype,
        unit=meta.get("unit"),
        ucd=meta.get("ucd"),
        utype=meta.get("utype"),
        description=meta.get("description"),
    )


def _numeric(kind: Any, pa: Any) -> str | None:
    """The VOTable datatype of a boolean or numeric Arrow type (else None)."""
    if not (
        pa.types.is_boolean(kind)
        or pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
    ):
        return None
    return numpy_datatype(str(kind), np.dtype(kind.to_pandas_dtype()))[0]


def _datatype(name: str, kind: Any, pa: Any) -> tuple[str, str | None, str | None]:
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return "unicodeChar", "*", None
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return "char", "*", "timestamp"
    if (
        pa.types.is_list(kind)
        or pa.types.is_fixed_size_list(kind)
        or (pa.types.is_large_list(kind))
    ):
        element = _numeric(kind.value_type, pa)
        if element is not None:
            return element, "*", None
    elif (datatype := _numeric(kind, pa)) is not None:
        return datatype, None, None
    raise LoadError(f"column {name!r}: Parquet type {kind} is not supported")


def _header(
    metadata: dict[bytes, bytes],
) -> tuple[dict[str, dict[str, str]], str | None]:
    """Per column metadata and the table description, from either header."""
    if _VOPARQUET in metadata:
        from astropy.io.votable import parse  # type: ignore[import-untyped]

        # a read function: astropy does not sniff it for compression (its
        # bzip2 branch leaves a temporary file: taprunner.load.expand)
        table = parse(
            io.BytesIO(metadata[_VOPARQUET]).read, verify="ignore"
        ).get_first_table()
        found = {
            str(f.name): {
                k: str(v).strip()
                for k, v in (
                    ("unit", f.unit),
                    ("ucd", f.ucd),
                    ("utype", f.utype),
                    ("description", f.description),
                )
                if v
            }
            for f in table.fields
        }
        return found, str(
            table.description
        ).strip() or None if table.description else None
    if _ASTROPY in metadata:
        from astropy.table import meta as yaml_meta  # type: ignore[import-untyped]

        header = yaml_meta.get_header_from_yaml(
            metadata[_ASTROPY].decode().splitlines()
        )
        found = {}
        for entry in header.get("datatype", []):
            values = {k: str(v) for k, v in dict(entry.get("meta") or {}).items()}
            for key in ("unit", "description"):
                if entry.get(key):
                    values[key] = str(entry[key])
            found[str(entry["name"])] = values
        description = dict(header.get("meta") or {}).get("description")
        return found, str(description) if description else None
    return {}, None


def _batches(
    parquet: Any, names: list[str], masks: dict[str, str], times: set[str], rows: int
) -> Batches:
    wanted = names + [masks[n] for n in names if n in masks]
    for batch in parquet.iter_batches(batch_size=rows, columns=wanted):
        values = []
        for name in names:
            column = batch.column(name).to_pylist()
            if name in times:
                column = [_utc(v) for v in column]
            if name in masks:
                mask = batch.column(masks[name]).to_pylist()
                column = [None if m else v for v, m in zip(column, mask, strict=True)]
            values.append(column)
        yield list(zip(*values, strict=True))


def _utc(value: object) -> object:
    """A timestamp as PostgreSQL's ``timestamp`` takes it: naive, in UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return value
