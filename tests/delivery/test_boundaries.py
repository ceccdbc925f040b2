"""Dependencies run one way: jobs and workers use delivery, never the reverse."""

from __future__ import annotations

import subprocess
import sys

# A fresh interpreter, so modules other tests imported cannot hide or fake a dependency.
PROBE = """
import importlib, pkgutil, sys
import app.delivery
for module in pkgutil.iter_modules(app.delivery.__path__):
    importlib.import_module(f"app.delivery.{module.name}")
print(" ".join(sorted(n for n in sys.modules if n.startswith(("app.jobs", "app.workers")))))
"""


def test_the_delivery_domain_imports_neither_jobs_nor_workers() -> None:
    probe = subprocess.run(  # noqa: S603 - our own interpreter, a fixed script
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True
    )
    assert probe.stdout.split() == []
