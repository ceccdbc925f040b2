"""The delivery rules as plain functions: no database, no clock, no randomness."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.delivery import policy

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
SCHEDULE = [0.0, 60.0, 300.0]


def delay(
    step: int, status_code: int | None = 500, retry_after_s: float | None = None
) -> float | None:
    return policy.retry_delay_s(
        SCHEDULE,
        step,
        status_code=status_code,
        retry_after_s=retry_after_s,
        retry_after_max_s=3600.0,
        jitter=1.0,
    )


def test_only_the_current_secret_signs_outside_a_rotation() -> None:
    assert policy.signing_secrets("new", None, None, NOW) == ["new"]


def test_the_previous_secret_signs_too_during_the_overlap() -> None:
    later = NOW + timedelta(seconds=1)
    assert policy.signing_secrets("new", "old", later, NOW) == ["new", "old"]


def test_the_previous_secret_stops_signing_when_the_overlap_ends() -> None:
    assert policy.signing_secrets("new", "old", NOW, NOW) == ["new"]


def test_the_lease_outlives_the_send_timeout() -> None:
    assert policy.lease_until(NOW, 10.0) == NOW + timedelta(seconds=15)


def test_no_free_slot_refuses_but_leaves_the_delivery_due_now() -> None:
    decision = policy.admit(0, None, 10.0, NOW)
    assert not decision.admitted
    assert decision.retry_at == NOW
    assert decision.rate_tat is None


def test_a_fresh_endpoint_is_admitted_and_its_rate_state_advances() -> None:
    decision = policy.admit(1, None, 4.0, NOW)
    assert decision.admitted
    assert decision.rate_tat == NOW + timedelta(seconds=0.25)


def test_a_rate_state_in_the_past_counts_from_now() -> None:
    decision = policy.admit(1, NOW - timedelta(hours=1), 2.0, NOW)
    assert decision.rate_tat == NOW + timedelta(seconds=0.5)


def test_the_rate_allows_a_burst_of_one_second() -> None:
    at_the_edge = policy.admit(3, NOW + timedelta(seconds=1), 10.0, NOW)
    assert at_the_edge.rate_tat == NOW + timedelta(seconds=1.1)


def test_over_the_rate_the_delivery_waits_for_its_turn() -> None:
    tat = NOW + timedelta(seconds=1.5)
    decision = policy.admit(3, tat, 10.0, NOW)
    assert not decision.admitted
    assert decision.retry_at == tat


@pytest.mark.parametrize(("status_code", "ok"), [(200, True), (204, True), (299, True)])
def test_a_2xx_is_delivered(status_code: int, ok: bool) -> None:
    assert policy.delivered(status_code) is ok


@pytest.mark.parametrize("status_code", [None, 199, 301, 302, 304, 410, 429, 500])
def test_anything_else_is_not_delivered(status_code: int | None) -> None:
    assert policy.delivered(status_code) is False


def test_failure_reasons() -> None:
    assert policy.failure_reason(None, "timed out") == "timed out"
    assert policy.failure_reason(500, None) == "HTTP 500"
    assert policy.failure_reason(302, None) == "HTTP 302: redirects are not followed"


def test_each_failure_moves_one_step_along_the_schedule() -> None:
    assert delay(1) == 60.0
    assert delay(2) == 300.0


def test_past_the_last_step_the_schedule_is_exhausted() -> None:
    assert delay(3) is None


def test_jitter_scales_the_step() -> None:
    jittered = policy.retry_delay_s(
        SCHEDULE, 1, status_code=500, retry_after_s=None, retry_after_max_s=1.0, jitter=1.1
    )
    assert jittered == pytest.approx(66.0)


def test_jitter_stays_within_ten_percent() -> None:
    assert all(0.9 <= policy.jitter() <= 1.1 for _ in range(200))


@pytest.mark.parametrize("status_code", [429, 503])
def test_a_longer_retry_after_wins_on_429_and_503(status_code: int) -> None:
    assert delay(1, status_code, retry_after_s=600.0) == 600.0


def test_a_shorter_retry_after_does_not_hurry_the_schedule() -> None:
    assert delay(1, 429, retry_after_s=5.0) == 60.0


def test_retry_after_is_bounded() -> None:
    assert delay(1, 503, retry_after_s=10**9) == 3600.0


def test_retry_after_is_ignored_on_other_failures() -> None:
    assert delay(1, 500, retry_after_s=600.0) == 60.0


def test_retry_after_does_not_extend_an_exhausted_schedule() -> None:
    assert delay(3, 429, retry_after_s=600.0) is None


def test_the_circuit_stays_closed_below_the_threshold() -> None:
    assert policy.circuit_open_s(4, 5, 30.0, 3600.0) is None


def test_the_circuit_opens_at_the_threshold_and_doubles_per_failed_probe() -> None:
    assert [policy.circuit_open_s(n, 5, 30.0, 3600.0) for n in (5, 6, 7)] == [30.0, 60.0, 120.0]


def test_the_circuit_open_time_is_capped() -> None:
    assert policy.circuit_open_s(12, 5, 30.0, 3600.0) == 3600.0
    assert policy.circuit_open_s(10_000, 5, 30.0, 3600.0) == 3600.0


def test_410_disables_at_once() -> None:
    reason = policy.disable_reason(gone=True, failing_since=NOW, now=NOW, disable_after_s=60.0)
    assert reason == "the endpoint answered 410 Gone"


def test_a_short_failure_streak_does_not_disable() -> None:
    since = NOW - timedelta(seconds=59)
    assert (
        policy.disable_reason(gone=False, failing_since=since, now=NOW, disable_after_s=60) is None
    )


def test_a_sustained_failure_streak_disables() -> None:
    since = NOW - timedelta(seconds=60)
    reason = policy.disable_reason(gone=False, failing_since=since, now=NOW, disable_after_s=60)
    assert reason == f"every delivery failed since {since.isoformat()}"
