"""The session state machine, call by call."""

from __future__ import annotations

import pytest

from openjd_runtime.errors import InvalidStateError
from openjd_runtime.state import ActionState, Lifecycle, SessionState

R, RUN, CAN, RE, END = (
    SessionState.READY,
    SessionState.RUNNING,
    SessionState.CANCELING,
    SessionState.READY_ENDING,
    SessionState.ENDED,
)

CALLS = ["enter_environment", "run_task", "exit_environment", "cancel_action"]
ALLOWED = {
    R: {"enter_environment", "run_task", "exit_environment"},
    RUN: {"cancel_action"},
    CAN: {"cancel_action"},
    RE: {"exit_environment"},
    END: set(),
}


@pytest.mark.parametrize("state", list(SessionState))
@pytest.mark.parametrize("call", CALLS)
def test_each_state_allows_only_its_calls(state: SessionState, call: str) -> None:
    lifecycle = Lifecycle()
    lifecycle.state = state
    if call in ALLOWED[state]:
        lifecycle.check(call)
    else:
        with pytest.raises(InvalidStateError, match=call):
            lifecycle.check(call)


@pytest.mark.parametrize(
    ("results", "expected"),
    [
        ([ActionState.SUCCESS], R),
        ([ActionState.FAILED], RE),
        ([ActionState.CANCELED], RE),
        ([ActionState.TIMEOUT], RE),
        ([ActionState.SUCCESS, ActionState.SUCCESS], R),
        # Once ending, a later success (an exit after a failure) does not make it ready again.
        ([ActionState.FAILED, ActionState.SUCCESS], RE),
        ([ActionState.TIMEOUT, ActionState.SUCCESS, ActionState.SUCCESS], RE),
    ],
)
def test_actions_lead_to_ready_or_ending(
    results: list[ActionState], expected: SessionState
) -> None:
    lifecycle = Lifecycle()
    for result in results:
        lifecycle.start_action()
        assert lifecycle.state == RUN
        lifecycle.finish_action(result)
    assert lifecycle.state == expected


def test_cancel_then_finish_ends_brittle() -> None:
    lifecycle = Lifecycle()
    lifecycle.start_action()
    lifecycle.cancel()
    assert lifecycle.state == CAN
    lifecycle.finish_action(ActionState.CANCELED)
    assert lifecycle.state == RE


def test_an_action_finishing_after_the_end_leaves_it_ended() -> None:
    lifecycle = Lifecycle()
    lifecycle.start_action()
    lifecycle.end()
    lifecycle.finish_action(ActionState.CANCELED)
    assert lifecycle.state == END
