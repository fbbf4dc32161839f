"""A fork, simulated in the test process: what a forked child sees, without a child.

A real ``os.fork()`` under pytest would copy the whole test run, so the fast
tests run the handlers the child runs (registered with
``os.register_at_fork``) in the test process itself, in their registration
order, then end the facades' logger threads: a forked child has none of the
parent's threads. The spool's own handler is left out: the parent's spool
stays the parent's, which the real forks of
tests/integration/test_sync_process.py check.
"""

from __future__ import annotations

from eventlog import _registry, _sync

__all__ = ["fork_in_place"]


def fork_in_place() -> None:
    """Run the child's at-fork handlers here, then end the threads a child would not have."""
    runs = [log._run for log in list(_sync._LIVE) if log._run is not None]
    _registry._after_fork_in_child()
    _sync._after_fork_in_child()
    for run in runs:
        # The parent's logger stopped accepting and lost its queue in the
        # handler: its thread ends without sending anything.
        run.waker.call(run.stop.set)
        run.thread.join(5.0)
        assert not run.thread.is_alive()
