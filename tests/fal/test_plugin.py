"""imagen-fal as a distribution: its entry point, a cheap import, and a wheel
that carries the data files (tests/distribution_checks.py)."""

from __future__ import annotations

from tests.distribution_checks import DistributionChecks


class TestDistribution(DistributionChecks):
    distribution = "imagen-fal"
    entry_point = "fal"
    data_files = (
        "families.json",
        "pricing.json",
    )
