"""imagen-openai as a distribution: its entry point, a cheap import, and a wheel
that carries the data files (tests/distribution_checks.py)."""

from __future__ import annotations

from tests.distribution_checks import DistributionChecks


class TestDistribution(DistributionChecks):
    distribution = "imagen-openai"
    entry_point = "openai"
    data_files = ("models.json",)
