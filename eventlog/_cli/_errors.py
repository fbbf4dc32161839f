"""How the commands recognise Ctrl-C; a leaf that every command module may import."""

from __future__ import annotations

__all__ = ["is_interrupt"]


def is_interrupt(exc: BaseException) -> bool:
    """True for a KeyboardInterrupt, also inside the exception groups trio raises."""
    if isinstance(exc, BaseExceptionGroup):
        return all(is_interrupt(inner) for inner in exc.exceptions)
    return isinstance(exc, KeyboardInterrupt)
