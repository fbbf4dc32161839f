"""What the spool knows of one segment in memory: its pages and its time span."""

from __future__ import annotations

from eventlog._spool._segment import PAGE_RECORDS, RunLog, Segment


def new_segment() -> Segment:
    return RunLog(directory="/spool/spool-v2.sess.run", inherited=False).new_segment(1)


def test_page_of_finds_the_page_holding_a_number_and_none_outside_them() -> None:
    """Numbers before the first page, past the last, or in a gap have no page to read."""
    segment = new_segment()
    for number in range(5, 5 + PAGE_RECORDS + 2):
        segment.add_line(number, (number - 5) * 10, 10)
    first, second = segment.pages
    assert (first.first, first.last, second.first, second.last) == (5, 260, 261, 262)
    assert segment.page_of(5) is first
    assert segment.page_of(262) is second
    assert segment.page_of(4) is None
    assert segment.page_of(263) is None


def test_a_line_that_does_not_follow_the_last_starts_a_page() -> None:
    """A gap in the file (a torn line between) starts a new page at the next whole line."""
    segment = new_segment()
    segment.add_line(0, 0, 10)
    segment.add_line(1, 25, 10)
    assert [(p.offset, p.length, p.first, p.last) for p in segment.pages] == [
        (0, 10, 0, 0),
        (25, 10, 1, 1),
    ]


def test_stamp_widens_the_span_and_ignores_an_unknown_time() -> None:
    """Only known times (> 0) move the oldest and newest: a line without one leaves them."""
    segment = new_segment()
    segment.stamp(0.0)
    assert (segment.oldest, segment.newest) == (0.0, 0.0)
    segment.stamp(200.0)
    segment.stamp(100.0)
    segment.stamp(0.0)
    segment.stamp(150.0)
    assert (segment.oldest, segment.newest) == (100.0, 200.0)
