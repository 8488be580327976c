"""The state's declared shapes agree with what fills them."""

from __future__ import annotations

import dataclasses
from typing import get_args

from graph.state import ANSWERED, FAILED, Passage, Status
from retrieval.store import Found


def test_a_passage_is_a_found_chunk_numbered_for_citation():
    assert set(Passage.__annotations__) == {"n"} | {f.name for f in dataclasses.fields(Found)}


def test_the_status_groups_are_statuses():
    assert set(ANSWERED) | set(FAILED) < set(get_args(Status))
    assert not set(ANSWERED) & set(FAILED)
