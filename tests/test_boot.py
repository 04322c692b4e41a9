"""The boot state machine, table by table (bridge.core.boot)."""

import pytest

from bridge.core.boot import DEFAULT_RETRY_S, FAILED_BOOT_RETRY_S, Boot, BootState

CONTENT = '{"chargePointModel":"m","chargePointVendor":"v"}'


def test_a_fresh_daemon_must_boot_and_may_send_nothing_else() -> None:
    boot = Boot()
    assert boot.needs_boot(CONTENT)
    assert not boot.may_send
    assert boot.may_answer(0.0)


def test_accepted_allows_sending_and_no_boot_on_reconnect_with_same_content() -> None:
    boot = Boot()
    boot.on_answer("Accepted", 300, CONTENT, now=0.0)
    assert boot.state is BootState.ACCEPTED and boot.may_send
    boot.on_connected(CONTENT)
    assert not boot.needs_boot(CONTENT)
    assert boot.may_send


def test_changed_content_boots_again_after_reconnect_and_blocks_sending_until_answered() -> None:
    boot = Boot()
    boot.on_answer("Accepted", 300, CONTENT, now=0.0)
    changed = CONTENT.replace('"m"', '"m2"')
    boot.on_connected(changed)
    assert boot.needs_boot(changed)
    assert not boot.may_send


def test_force_on_reconnect_boots_every_connection() -> None:
    boot = Boot(force_on_reconnect=True)
    boot.on_answer("Accepted", 300, CONTENT, now=0.0)
    boot.on_connected(CONTENT)
    assert boot.needs_boot(CONTENT)


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
def test_not_accepted_waits_interval_before_next_boot(status: str) -> None:
    boot = Boot()
    boot.on_answer(status, 7, CONTENT, now=100.0)
    assert boot.next_boot_at == 107.0
    assert boot.needs_boot(CONTENT)
    assert not boot.may_send


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
def test_interval_zero_gets_a_default_that_does_not_flood(status: str) -> None:
    boot = Boot()
    boot.on_answer(status, 0, CONTENT, now=0.0)
    assert boot.next_boot_at == DEFAULT_RETRY_S


def test_rejected_is_silent_until_the_interval_has_passed_pending_answers() -> None:
    boot = Boot()
    boot.on_answer("Rejected", 10, CONTENT, now=0.0)
    assert not boot.may_answer(9.9)
    assert boot.may_answer(10.0)
    boot.on_answer("Pending", 10, CONTENT, now=20.0)
    assert boot.may_answer(21.0)


def test_failed_boot_is_retried_later() -> None:
    boot = Boot()
    boot.on_failure(now=5.0)
    assert boot.next_boot_at == 5.0 + FAILED_BOOT_RETRY_S
    assert boot.needs_boot(CONTENT)


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
def test_a_trigger_while_a_boot_is_on_its_way_is_not_lost_to_its_answer(status: str) -> None:
    """TriggerMessage(BootNotification) read before the answer to the boot in flight: that answer's
    interval does not postpone the boot the central system asked for."""
    boot = Boot()
    boot.on_connected("c")
    boot.on_sent()
    boot.trigger()
    boot.on_answer(status, 300, "c", now=100.0)
    assert boot.next_boot_at == 100.0
    boot.on_sent()  # the triggered boot goes out; its own answer counts as usual
    boot.on_answer(status, 300, "c", now=101.0)
    assert boot.next_boot_at == 401.0


def test_a_trigger_answered_by_a_later_boot_does_not_boot_twice() -> None:
    boot = Boot()
    boot.on_connected("c")
    boot.on_answer("Pending", 300, "c", now=0.0)
    boot.trigger()  # while waiting: the next boot goes now, and answers the trigger
    assert boot.next_boot_at == 0.0
    boot.on_sent()
    boot.on_answer("Pending", 300, "c", now=5.0)
    assert boot.next_boot_at == 305.0
