"""Where a command writes: rich on a terminal when it is installed, plain text otherwise.

Plain text is what the core install prints, and what any output that is not
a terminal gets. Nothing is ever broken inside a word: on a terminal, text is
wrapped at spaces to its width, and a table too wide for it moves its long
tokens (paths, names, ids) to lines of their own under each row; output that
is not a terminal is not wrapped at all (a row is one line), so that it can
be piped to ``grep`` or ``cut``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
import textwrap
from typing import TYPE_CHECKING, Final, TextIO

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from rich.console import Console

__all__ = ["Column", "Stream", "confirm", "table_lines"]

_GAP: Final = "  "
_INDENT: Final = "    "
"""Before the lines of a row that hold the tokens moved out of it."""


@dataclasses.dataclass(frozen=True, slots=True)
class Column:
    """One column of a table."""

    header: str
    numeric: bool = False
    """Right-aligned."""
    token: bool = False
    """A path, name or id: never cut; moved to a line of its own when the row is too wide."""


def table_lines(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int | None
) -> list[tuple[str, bool]]:
    """The lines of a table that fits ``width`` (None: no limit), each with "is a header".

    Columns are separated by two spaces. When a row is wider than ``width``,
    token columns are taken out of it, the rightmost first, until it fits;
    they go on indented lines under it, as many side by side as fit (the
    headers likewise). A token wider than the terminal stays whole: the
    terminal, not this function, wraps it.
    """
    widths = [
        max([len(column.header), *(len(row[i]) for row in rows)])
        for i, column in enumerate(columns)
    ]

    def span(band: list[int]) -> int:
        return sum(widths[i] for i in band) + len(_GAP) * (len(band) - 1)

    first = list(range(len(columns)))
    moved: list[int] = []
    if width is not None:
        for i in reversed(range(len(columns))):
            if span(first) <= width:
                break
            if columns[i].token and len(first) > 1:
                first.remove(i)
                moved.insert(0, i)
    bands = [first]
    for i in moved:
        if len(bands) > 1 and width is not None and len(_INDENT) + span([*bands[-1], i]) <= width:
            bands[-1].append(i)
        else:
            bands.append([i])

    def line(band: list[int], cells: Sequence[str], indent: str) -> str:
        text = _GAP.join(
            cells[i].rjust(widths[i]) if columns[i].numeric else cells[i].ljust(widths[i])
            for i in band
        )
        return (indent + text).rstrip()

    headers = [column.header for column in columns]
    lines = [(line(band, headers, _INDENT if k else ""), True) for k, band in enumerate(bands)]
    for row in rows:
        lines += [(line(band, row, _INDENT if k else ""), False) for k, band in enumerate(bands)]
    return lines


class Stream:
    """stdout or stderr of a command: rich (styles) or plain text, at a width or unwrapped."""

    def __init__(
        self, file: TextIO, *, console: Console | None = None, width: int | None = None
    ) -> None:
        self.file = file
        self.console = console
        """The rich console writing to ``file``, when rich is used."""
        self.width = width if width is not None or console is None else console.width
        """Columns to fit; None when the output is not a terminal: nothing is wrapped."""

    @classmethod
    def to(cls, file: TextIO) -> Stream:
        """Rich on a terminal when it is installed; plain text otherwise, unwrapped off a tty."""
        if not file.isatty():
            return cls(file)
        try:
            from rich.console import Console
        except ImportError:
            return cls(file, width=shutil.get_terminal_size().columns)
        return cls(file, console=Console(file=file, highlight=False))

    def _write(self, line: str, style: str | None = None, lead: int = 0) -> None:
        """One line; ``style`` on its first ``lead`` characters (all of it when 0)."""
        if self.console is None:
            self.file.write(line + "\n")
            return
        from rich.text import Text

        text = Text(line)
        if style:
            text.stylize(style, 0, lead or len(line))
        # soft_wrap: the line is already as wide as it may be; rich must not fold it.
        self.console.print(text, soft_wrap=True)

    def _wrap(self, text: str) -> list[str]:
        if self.width is None:
            return text.split("\n")
        lines: list[str] = []
        for paragraph in text.split("\n"):
            lines += textwrap.wrap(
                paragraph,
                self.width,
                subsequent_indent="  ",
                break_long_words=False,
                break_on_hyphens=False,
            ) or [""]
        return lines

    def say(self, text: str, *, style: str | None = None) -> None:
        """Print ``text``, wrapped at spaces to the terminal (never inside a word)."""
        for line in self._wrap(text):
            self._write(line, style)
        self.file.flush()

    def error(self, text: str) -> None:
        """Print ``error: <text>``, the prefix in red on a terminal."""
        for n, line in enumerate(self._wrap(f"error: {text}")):
            self._write(line, "bold red" if n == 0 else None, len("error:"))
        self.file.flush()

    def table(self, columns: Sequence[Column], rows: Sequence[Sequence[str]]) -> None:
        """Print a table that fits the terminal (see :func:`table_lines`)."""
        for line, header in table_lines(columns, rows, self.width):
            self._write(line, "bold" if header else None)
        self.file.flush()

    @contextlib.contextmanager
    def progress(self, label: str, total: int) -> Iterator[Callable[[int, int], None]]:
        """A progress bar on a rich terminal, for the block; elsewhere nothing.

        Yields the function that moves it: ``update(done, of)``.
        """
        if self.console is None:
            yield lambda done, of: None
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=self.console) as bar:
            task = bar.add_task(label, total=total)

            def update(done: int, of: int) -> None:
                bar.update(task, completed=done, total=of)

            yield update


def confirm(question: str) -> bool:
    """Ask ``question [y/N]`` on stdin; only ``y`` or ``yes`` is yes, end of input is no."""
    try:
        answer = input(f"{question} [y/N] ")
    except EOFError:
        return False
    return answer.strip().lower() in {"y", "yes"}
