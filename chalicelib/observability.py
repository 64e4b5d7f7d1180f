"""Structured JSON logs (Powertools Logger) and CloudWatch metrics in EMF, created on first use."""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.logging import Logger

METRICS_NAMESPACE = "RacePlatform"


@functools.cache
def logger() -> Logger:
    from aws_lambda_powertools.logging import Logger

    return Logger(service="race-platform", log_uncaught_exceptions=False)


def metric(name: str, value: float = 1, unit: str = "Count") -> None:
    """Emit one EMF metric line (CloudWatch turns it into a metric; locally it is a log line).

    RACE_METRICS=off silences them (benchmarks, noisy local runs).
    """
    if os.environ.get("RACE_METRICS", "on") == "off":
        return
    from aws_lambda_powertools.metrics import MetricUnit, single_metric

    with single_metric(name=name, unit=MetricUnit(unit), value=value, namespace=METRICS_NAMESPACE) as emitted:
        emitted.add_dimension(name="stage", value=os.environ.get("STAGE", "local"))
