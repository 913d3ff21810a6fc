"""PLACEHOLDER until its issue lands: every name here raises NotImplementedError."""

from typing import Any


def Plan(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("Plan is not built yet")


def PlanStep(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("PlanStep is not built yet")


def plan_upsampling(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("plan_upsampling is not built yet")


def plan_downsampling(*args: Any, **kwargs: Any) -> Any:
    raise NotImplementedError("plan_downsampling is not built yet")

