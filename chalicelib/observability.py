"""Structured JSON logging (Powertools Logger), created on first use to keep cold starts short."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aws_lambda_powertools.logging import Logger


@functools.cache
def logger() -> Logger:
    from aws_lambda_powertools.logging import Logger

    return Logger(service="race-platform", log_uncaught_exceptions=False)
