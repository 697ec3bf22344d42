"""The embedded demo's transfer chain, shortened to one epoch: it ends with a report of everything it made."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_the_transfer_demo_reports_what_it_computed(tmp_path, capsys) -> None:
    from taskspace.demo import run_transfer_demo

    run_transfer_demo(out_dir=tmp_path / "transfer", epochs=1, seed=0, show_progress=False)
    printed = capsys.readouterr().out
    assert "How well each estimator ranks the sources" in printed and "sources for 4_vs_7" in printed
    report = (tmp_path / "transfer" / "report" / "report.md").read_text(encoding="utf-8")
    assert "holds no module similarity" not in report and "Spearman" in report
    assert "No ground truth was measured" not in report
