"""Running a GX suite over a pandas frame, shared by every suite that validates frames.

Each suite gets an ephemeral context and a whole-dataframe batch definition, built on first use
and reused: building them costs more than validating a small frame. The datasource's execution
engine holds the batch being validated, so one frame is validated at a time per suite.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import great_expectations as gx
import pandas as pd
from great_expectations.core.batch_definition import BatchDefinition
from great_expectations.data_context.types.base import ProgressBarsConfig


class FrameSuite:
    """A GX suite ready to validate frames; `outcomes` returns its results in suite order."""

    def __init__(self, name: str, build_suite: Callable[[], gx.ExpectationSuite]) -> None:
        self._name = name
        self._build_suite = build_suite
        self._lock = threading.Lock()
        self._prepared: tuple[BatchDefinition, gx.ExpectationSuite] | None = None

    def _prepare(self) -> tuple[BatchDefinition, gx.ExpectationSuite]:
        if self._prepared is None:
            context = gx.get_context(mode="ephemeral")
            context.enable_analytics(False)
            context.variables.progress_bars = ProgressBarsConfig(globally=False)
            asset = context.data_sources.add_pandas(self._name).add_dataframe_asset(self._name)
            self._prepared = (
                asset.add_batch_definition_whole_dataframe(self._name),
                context.suites.add(self._build_suite()),
            )
        return self._prepared

    def outcomes(self, frame: pd.DataFrame, result_format: str = "SUMMARY") -> list[Any]:
        """Validate `frame`; GX groups results by column, so they are put back in suite order."""
        with self._lock:
            batch_definition, suite = self._prepare()
            batch = batch_definition.get_batch(batch_parameters={"dataframe": frame})
            result = batch.validate(suite, result_format={"result_format": result_format})
        rank = {expectation.id: i for i, expectation in enumerate(suite.expectations)}
        return sorted(result.results, key=lambda outcome: rank[outcome.expectation_config.id])
