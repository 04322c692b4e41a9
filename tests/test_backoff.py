from bridge.core.backoff import Backoff


def test_first_retry_comes_within_the_initial_delay() -> None:
    assert 0.5 <= Backoff(1.0, 60.0, rand=lambda: 0.0).next_delay() <= 1.0
    assert Backoff(1.0, 60.0, rand=lambda: 0.999).next_delay() <= 1.0


def test_delays_double_and_are_capped() -> None:
    b = Backoff(1.0, 10.0, rand=lambda: 1.0)
    assert [b.next_delay() for _ in range(6)] == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_jitter_spreads_delays_between_half_and_full() -> None:
    values = iter([0.0, 0.5])
    b = Backoff(4.0, 60.0, rand=lambda: next(values))
    assert b.next_delay() == 2.0
    assert b.next_delay() == 6.0  # base 8: 4 + 4 * 0.5


def test_reset_starts_over() -> None:
    b = Backoff(1.0, 60.0, rand=lambda: 1.0)
    for _ in range(5):
        b.next_delay()
    b.reset()
    assert b.next_delay() == 1.0


def test_many_failures_do_not_overflow() -> None:
    b = Backoff(1.0, 30.0, rand=lambda: 1.0, failures=10_000)
    assert b.next_delay() == 30.0
