"""The compatibility matrix: every public module × compile, export, TorchScript, ONNX, state_dict,
autocast, channels_last, DDP, deepcopy and pickle (tables in benchmarks/compat.py)."""

from __future__ import annotations

import pytest

from benchmarks.compat import CHECKS, SUBJECTS, NotApplicable, Skipped, Subject


@pytest.mark.parametrize("check", list(CHECKS))
@pytest.mark.parametrize("subject", SUBJECTS, ids=lambda s: s.name)
def test_module_works_with(subject: Subject, check: str) -> None:
    try:
        CHECKS[check](subject)
    except (NotApplicable, Skipped) as why:
        pytest.skip(f"{type(why).__name__}: {why}")

