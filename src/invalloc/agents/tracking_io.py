"""MLflow plumbing for training: batched metrics (also SB3's logger output) and params."""

from __future__ import annotations

import math
import time
from typing import Any

from stable_baselines3.common.logger import KVWriter

# MLflow's log_batch limits per call.
_METRICS_PER_BATCH = 1000
_PARAMS_PER_BATCH = 100
_PARAM_VALUE_LIMIT = 6000


class MetricBuffer:
    """Metrics kept in memory and written in batches when :meth:`flush` is called.

    Training flushes only when it writes a checkpoint (and at the end), so the metrics in
    the store always stop where the last checkpoint stops: a resumed run continues the
    history without logging any step twice.
    """

    def __init__(self) -> None:
        self._pending: list[Any] = []

    def add(self, key: str, value: float, step: int) -> None:
        from mlflow.entities import Metric

        number = float(value)
        if math.isfinite(number):
            self._pending.append(
                Metric(key=_metric_key(key), value=number, timestamp=int(time.time() * 1000), step=step)
            )

    def add_many(self, values: dict[str, float], step: int) -> None:
        for key, value in values.items():
            self.add(key, value, step)

    def flush(self, client: Any, run_id: str) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), _METRICS_PER_BATCH):
            client.log_batch(run_id, metrics=pending[start : start + _METRICS_PER_BATCH], synchronous=True)

    def __len__(self) -> int:
        return len(self._pending)


def _metric_key(key: str) -> str:
    # MLflow keys allow letters, digits, _ - . space / only.
    return "".join(ch if ch.isalnum() or ch in "_-. /" else "_" for ch in key)


class MLflowOutputFormat(KVWriter):
    """SB3 logger output that puts every numeric value into a :class:`MetricBuffer`."""

    def __init__(self, buffer: MetricBuffer) -> None:
        self.buffer = buffer

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, tuple[str, ...]], step: int = 0) -> None:
        for key, value in sorted(key_values.items()):
            excluded = key_excluded.get(key)
            if excluded is not None and "mlflow" in excluded:
                continue
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.buffer.add(key, value, step)
            elif hasattr(value, "item") and getattr(value, "size", 0) == 1:
                self.buffer.add(key, value.item(), step)

    def close(self) -> None:
        pass


def log_params(client: Any, run_id: str, params: dict[str, str]) -> None:
    """Log params in batches; values longer than MLflow allows are cut with a marker."""
    from mlflow.entities import Param

    items = [
        Param(key=_metric_key(k), value=v if len(v) <= _PARAM_VALUE_LIMIT else v[: _PARAM_VALUE_LIMIT - 1] + "…")
        for k, v in params.items()
    ]
    for start in range(0, len(items), _PARAMS_PER_BATCH):
        client.log_batch(run_id, params=items[start : start + _PARAMS_PER_BATCH], synchronous=True)
