from __future__ import annotations

import uuid

from plinth.ids import new_id, now_ms


def test_ids_are_uuid7_and_sort_by_creation() -> None:
    ids = [new_id() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    parsed = uuid.UUID(ids[0])
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122


def test_id_embeds_the_creation_time() -> None:
    before = now_ms()
    value = uuid.UUID(new_id()).int >> 80
    after = now_ms()
    assert before <= value <= after + 1
