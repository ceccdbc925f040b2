"""Shared values for the adapter tests."""

from __future__ import annotations

from app.simulator.config import SimulatorConfig

FAST = SimulatorConfig(
    pending_time_s=0.02,
    processing_time_s=0.1,
    callback_retry_delays_s=(0.05, 0.05, 0.05),
    allow_insecure_callbacks=True,
    fault_hang_s=5.0,
)
