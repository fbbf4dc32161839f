"""The package's exceptions as they cross processes, and the ExceptionGroup unwrapper."""

from __future__ import annotations

import copy
import pickle

import pytest

import eventlog
from eventlog._exceptions import unwrap_group


@pytest.mark.parametrize("key", ["path", None])
def test_invalid_event_error_survives_pickle_and_copy_with_its_key(key: str | None) -> None:
    """InvalidEventError keeps its message and key through pickle and copy.copy."""
    message = "metadata value is a path"
    error = eventlog.InvalidEventError(message, key)
    for clone in (pickle.loads(pickle.dumps(error)), copy.copy(error)):
        assert type(clone) is eventlog.InvalidEventError
        assert (str(clone), clone.message, clone.key) == (message, message, key)


def test_unwrap_group_finds_the_one_exception_or_the_first_wider_group() -> None:
    """Nested one-member groups give their exception; a group of two is kept whole."""
    inner = ValueError("inner")
    assert unwrap_group(BaseExceptionGroup("a", [ExceptionGroup("b", [inner])])) is inner
    pair = ExceptionGroup("pair", [inner, KeyError("k")])
    assert unwrap_group(BaseExceptionGroup("outer", [pair])) is pair
