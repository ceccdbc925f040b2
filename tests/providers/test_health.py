"""The per-process circuit breaker: every outcome resolves a probe, a lost probe times out."""

from __future__ import annotations

from app.providers.health import CircuitBreaker, CircuitState


def _opened(now: float = 0.0) -> CircuitBreaker:
    breaker = CircuitBreaker(failure_threshold=2, open_s=10.0, probe_timeout_s=30.0)
    breaker.record_failure(now)
    breaker.record_failure(now)
    return breaker


def test_threshold_failures_open_the_circuit() -> None:
    breaker = _opened()

    assert breaker.state(now=5.0) is CircuitState.open
    assert not breaker.allows(now=5.0)


def test_half_open_lets_exactly_one_probe_through() -> None:
    breaker = _opened()

    assert breaker.allows(now=10.0)
    assert not breaker.allows(now=11.0)
    assert breaker.probing


def test_a_successful_probe_closes_the_circuit() -> None:
    breaker = _opened()
    assert breaker.allows(now=10.0)

    breaker.record_success()

    assert breaker.state(now=10.5) is CircuitState.closed
    assert not breaker.probing
    assert breaker.allows(now=10.5)


def test_a_failed_probe_reopens_for_a_full_period() -> None:
    breaker = _opened()
    assert breaker.allows(now=10.0)

    breaker.record_failure(now=12.0)

    assert not breaker.probing
    assert breaker.state(now=21.0) is CircuitState.open
    assert breaker.allows(now=22.0)


def test_a_probe_whose_outcome_never_arrives_is_given_up_after_its_timeout() -> None:
    breaker = _opened()
    assert breaker.allows(now=10.0)  # the caller then vanishes without recording anything

    assert not breaker.allows(now=39.0)
    assert breaker.allows(now=40.0)
