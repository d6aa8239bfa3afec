"""All UWS XML documents (job, job list, results, parameters, error summary).

Built with lxml in the UWS 1.1 namespace with ``version="1.1"``; an optional
``xml-stylesheet`` instruction lets browsers show them as HTML.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from lxml import etree

from aiouws.models import Job, JobRef
from aiouws.timefmt import format_iso

__all__ = [
    "UWS_NS",
    "XLINK_NS",
    "format_time",
    "xml_safe",
    "job_document",
    "jobs_document",
    "parameters_document",
    "results_document",
]

UWS_NS = "http://www.ivoa.net/xml/UWS/v1.0"
XLINK_NS = "http://www.w3.org/1999/xlink"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
_NSMAP = {"uws": UWS_NS, "xlink": XLINK_NS, "xsi": XSI_NS}
_U = f"{{{UWS_NS}}}"
_NIL = f"{{{XSI_NS}}}nil"
_HREF = f"{{{XLINK_NS}}}href"


#: Characters XML 1.0 cannot carry (lxml refuses them); shown as U+FFFD.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def xml_safe(value: str) -> str:
    """``value`` with every character XML cannot hold replaced by U+FFFD."""
    return _NOT_XML.sub("\ufffd", value)


def _text(
    parent: etree._Element, name: str, value: str | None, *, nillable: bool = False
) -> None:
    if value is None:
        if nillable:
            etree.SubElement(parent, _U + name).set(_NIL, "true")
        return
    etree.SubElement(parent, _U + name).text = xml_safe(value)


def _iso(value: object) -> str | None:
    return format_iso(value) if isinstance(value, datetime) else None


def format_time(value: datetime | None) -> str:
    """A timestamp for a text/plain resource; empty when there is none."""
    return format_iso(value) if value is not None else ""


def _serialize(root: etree._Element, stylesheet: str | None) -> bytes:
    body: bytes = etree.tostring(root, encoding="UTF-8", xml_declaration=False)
    head = b'<?xml version="1.0" encoding="UTF-8"?>\n'
    if stylesheet:
        head += f'<?xml-stylesheet type="text/xsl" href="{stylesheet}"?>\n'.encode()
    return head + body


def _parameters(parent: etree._Element | None, job: Job) -> etree._Element:
    element = (
        etree.Element(_U + "parameters", nsmap=_NSMAP)
        if parent is None
        else etree.SubElement(parent, _U + "parameters")
    )
    for p in job.parameters:
        child = etree.SubElement(element, _U + "parameter", id=xml_safe(p.name))
        if p.by_reference:
            child.set("byReference", "true")
        child.text = xml_safe(p.value)
    return element


def _results(parent: etree._Element | None, job: Job, job_url: str) -> etree._Element:
    element = (
        etree.Element(_U + "results", nsmap=_NSMAP)
        if parent is None
        else etree.SubElement(parent, _U + "results")
    )
    for r in job.results:
        child = etree.SubElement(element, _U + "result", id=xml_safe(r.id))
        child.set(_HREF, r.href or f"{job_url}/results/{r.id}")
        if r.size is not None:
            child.set("size", str(r.size))
        child.set("mime-type", r.media_type)
    return element


def job_document(
    job: Job, job_url: str, *, quote: object = None, stylesheet: str | None = None
) -> bytes:
    """The ``{jobs}/{id}`` document."""
    root = etree.Element(_U + "job", nsmap=_NSMAP, version="1.1")
    _text(root, "jobId", job.job_id)
    _text(root, "runId", job.run_id)
    _text(root, "ownerId", job.owner, nillable=True)
    _text(root, "phase", job.phase.value)
    _text(root, "quote", _iso(quote if quote is not None else job.quote), nillable=True)
    _text(root, "creationTime", _iso(job.creation_time))
    _text(root, "startTime", _iso(job.start_time), nillable=True)
    _text(root, "endTime", _iso(job.end_time), nillable=True)
    _text(root, "executionDuration", str(job.execution_duration))
    _text(root, "destruction", _iso(job.destruction_time), nillable=True)
    _parameters(root, job)
    _results(root, job, job_url)
    if job.error is not None:
        summary = etree.SubElement(
            root,
            _U + "errorSummary",
            type=job.error.type.value,
            hasDetail="true" if job.error.has_detail else "false",
        )
        _text(summary, "message", job.error.message)
    if job.job_info:
        info = etree.SubElement(root, _U + "jobInfo")
        for key, value in job.job_info:
            note = etree.SubElement(info, "note", key=xml_safe(key))
            note.text = xml_safe(value)
    return _serialize(root, stylesheet)


def jobs_document(
    refs: Sequence[JobRef], jobs_url: str, *, stylesheet: str | None = None
) -> bytes:
    """The ``{jobs}`` list document, newest first."""
    root = etree.Element(_U + "jobs", nsmap=_NSMAP, version="1.1")
    for ref in refs:
        element = etree.SubElement(root, _U + "jobref", id=ref.job_id)
        element.set(_HREF, f"{jobs_url}/{ref.job_id}")
        _text(element, "phase", ref.phase.value)
        _text(element, "runId", ref.run_id)
        _text(element, "ownerId", ref.owner, nillable=True)
        _text(element, "creationTime", _iso(ref.creation_time))
    return _serialize(root, stylesheet)


def results_document(job: Job, job_url: str) -> bytes:
    return _serialize(_results(None, job, job_url), None)


def parameters_document(job: Job) -> bytes:
    return _serialize(_parameters(None, job), None)
