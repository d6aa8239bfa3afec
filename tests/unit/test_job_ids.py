"""Job ids: unguessable, of the edge's pattern, and never read as an option."""

from __future__ import annotations

from aiouws.workdir import JOB_ID_PATTERN, new_job_id


def test_job_ids_never_start_with_a_dash() -> None:
    # token_urlsafe starts with '-' once in 64 draws: 4000 draws without the
    # guard would all but surely show one (1 - (63/64)**4000 > 0.999999).
    ids = {new_job_id() for _ in range(4000)}
    assert len(ids) == 4000
    assert not [i for i in ids if i.startswith("-")]
    assert all(JOB_ID_PATTERN.match(i) for i in ids)
