"""Files for the ``aiouws tap load`` tests, written with astropy (and pyarrow):
the same small star table in every format, with units, UCDs and descriptions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.table import MaskedColumn, Table

#: (id, ra, dec, mag, name); mag of the third star is NULL.
STARS = [
    (1, 10.0, 20.0, 5.5, "alpha"),
    (2, 10.5, 20.0, 6.25, "beta"),
    (3, 200.0, -45.0, None, "gamma"),
]
UNITS = {"ra": "deg", "dec": "deg", "mag": "mag"}
UCDS = {
    "id": "meta.id;meta.main",
    "ra": "pos.eq.ra;meta.main",
    "dec": "pos.eq.dec;meta.main",
    "mag": "phot.mag",
}
DESCRIPTIONS = {
    "id": "Star identifier",
    "ra": "Right ascension (ICRS)",
    "dec": "Declination (ICRS)",
    "mag": "Apparent magnitude",
    "name": "Designation",
}
TABLE_DESCRIPTION = "Three test stars"


def star_table(rows: list[tuple[object, ...]] = STARS) -> Table:
    """The stars as an astropy Table with their metadata."""
    table = Table()
    table["id"] = np.array([r[0] for r in rows], dtype=np.int64)
    table["ra"] = np.array([r[1] for r in rows], dtype=np.float64)
    table["dec"] = np.array([r[2] for r in rows], dtype=np.float64)
    table["mag"] = MaskedColumn(
        [r[3] if r[3] is not None else 0.0 for r in rows],
        mask=[r[3] is None for r in rows],
        dtype=np.float32,
    )
    table["name"] = [str(r[4]) for r in rows]
    for name, column in table.columns.items():
        column.unit = UNITS.get(name)
        column.description = DESCRIPTIONS[name]
        if name in UCDS:
            column.meta["ucd"] = UCDS[name]
    table.meta["description"] = TABLE_DESCRIPTION
    return table


def write_fits(path: Path, rows: list[tuple[object, ...]] = STARS) -> Path:
    """A FITS binary table with TUNITn, TUCDn and TCOMMn cards (upper-case names:
    the loader lowercases them); a NULL mag is NaN."""
    table = star_table(rows)
    columns = [
        fits.Column(name="ID", format="K", array=table["id"]),
        fits.Column(name="RA", format="D", unit="deg", array=table["ra"]),
        fits.Column(name="DEC", format="D", unit="deg", array=table["dec"]),
        fits.Column(
            name="MAG", format="E", unit="mag", array=table["mag"].filled(np.nan)
        ),
        fits.Column(name="NAME", format="8A", array=np.array(table["name"])),
    ]
    hdu = fits.BinTableHDU.from_columns(columns)
    for index, name in enumerate(["id", "ra", "dec", "mag", "name"], start=1):
        if name in UCDS:
            hdu.header[f"TUCD{index}"] = UCDS[name]
        hdu.header[f"TCOMM{index}"] = DESCRIPTIONS[name]
    hdu.writeto(path)
    return path


def write(path: Path, rows: list[tuple[object, ...]] = STARS) -> Path:
    """The stars in the format of ``path``'s ending (astropy's writers)."""
    if path.suffix == ".fits":
        return write_fits(path, rows)
    table = star_table(rows)
    for ending, serialisation in ((".b1.vot", "binary"), (".b2.vot", "binary2")):
        if path.name.endswith(ending):
            table.write(path, format="votable", tabledata_format=serialisation)
            return path
    formats = {
        ".vot": "votable",
        ".ecsv": "ascii.ecsv",
        ".parquet": "parquet",
        ".csv": "ascii.csv",
    }
    table.write(path, format=formats[path.suffix])
    return path


def truncate(path: Path, keep: float = 0.7) -> Path:
    """Cut ``path`` to a fraction of its size (a transfer that broke off)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def big_csv(path: Path, rows: int) -> Path:
    """``rows`` stars spread over the sky as CSV (demo.stars' shape)."""
    rng = np.random.default_rng(7)
    ra = rng.uniform(0, 360, rows)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, rows)))
    mag = rng.uniform(6, 20, rows)
    with open(path, "w") as out:
        out.write("id,ra,dec,mag,name\n")
        values = zip(ra.tolist(), dec.tolist(), mag.tolist(), strict=True)
        for i, (x, y, m) in enumerate(values, start=1):
            out.write(f"{i},{x!r},{y!r},{m:.3f},STAR {i}\n")
    return path


def big_binary2(path: Path, rows: int) -> Path:
    """``rows`` stars (id long, ra and dec double, mag float, NULL every 10th,
    name char[*]) as a BINARY2 VOTable, written a block at a time with numpy
    (astropy's writer holds the whole table and takes minutes for millions)."""
    import base64

    fields = (
        '<FIELD name="id" datatype="long"/><FIELD name="ra" datatype="double"/>'
        '<FIELD name="dec" datatype="double"/><FIELD name="mag" datatype="float"/>'
        '<FIELD name="name" datatype="char" arraysize="*"/>'
    )
    record = np.dtype(
        [
            ("mask", "u1"),
            ("id", ">i8"),
            ("ra", ">f8"),
            ("dec", ">f8"),
            ("mag", ">f4"),
            ("count", ">u4"),
            ("name", "S8"),
        ]
    )
    with open(path, "w") as out:
        out.write(
            '<?xml version="1.0"?>\n<VOTABLE version="1.4" xmlns='
            '"http://www.ivoa.net/xml/VOTable/v1.3"><RESOURCE><TABLE>'
            f'{fields}<DATA><BINARY2><STREAM encoding="base64">\n'
        )
        block = 300_000  # a multiple of 3: whole base64 quads per block
        for start in range(0, rows, block):
            ids = np.arange(start + 1, min(start + block, rows) + 1)
            data = np.zeros(len(ids), dtype=record)
            data["id"] = ids
            data["ra"] = ids % 360
            data["dec"] = (ids % 180) - 90.0
            data["mag"] = (ids % 15) + 0.5
            data["mask"] = np.where(ids % 10 == 0, 0x10, 0)  # 4th field: mag
            data["count"] = 8
            data["name"] = np.char.add(b"S", np.char.zfill(ids.astype("S7"), 7))
            encoded = base64.encodebytes(data.tobytes())
            out.write(encoded.decode("ascii"))
        out.write("</STREAM></BINARY2></DATA></TABLE></RESOURCE></VOTABLE>\n")
    return path
