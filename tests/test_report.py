"""genface.report: seed statistics against hand computations, the status column, the terminal
table at 100 columns, and the study's answers from a synthetic results.json."""

import json
import math

import pytest
from rich.console import Console

from genface import report


def _row(model, seed, metrics, **kw):
    return {"model": model, "seed": seed, "parameters": {"total": 123_456}, "images": 32000, "images_per_s": 500.0,
            "train_time_s": 64.0, "wall_time_s": 70.0, "final_losses": {"loss": 1.0}, "metrics": metrics, **kw}


def test_seed_stat_matches_a_hand_computation():
    s = report.seed_stat([1.0, 2.0, 4.0])
    # mean 7/3; sample variance ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3; t(0.975, df=2) = 4.302653
    assert s.n == 3 and s.mean == pytest.approx(7 / 3)
    assert s.std == pytest.approx(math.sqrt(7 / 3))
    half = 4.302653 * math.sqrt(7 / 3) / math.sqrt(3)
    assert (s.lo, s.hi) == (pytest.approx(7 / 3 - half, rel=1e-5), pytest.approx(7 / 3 + half, rel=1e-5))
    assert s.text() == "2.333 ± 1.5"
    one = report.seed_stat([5.0, float("nan")])  # NaN dropped; one value: no spread
    assert one.n == 1 and one.mean == 5.0 and math.isnan(one.std) and one.text() == "5"


def test_welch_p_matches_a_hand_computation():
    from scipy import stats

    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.5]
    va, vb = 1.0, ((4 - 31 / 6) ** 2 + (5 - 31 / 6) ** 2 + (6.5 - 31 / 6) ** 2) / 2
    se2 = va / 3 + vb / 3
    t = (2.0 - 31 / 6) / math.sqrt(se2)
    df = se2**2 / ((va / 3) ** 2 / 2 + (vb / 3) ** 2 / 2)  # Welch-Satterthwaite
    assert report.welch_p(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df), rel=1e-9)
    assert math.isnan(report.welch_p([1.0], b))
    assert report.welch_p([1.0, 1.0], [2.0, 2.0]) == 0.0 and report.welch_p([1.0, 1.0], [1.0, 1.0]) == 1.0


def test_aggregate_leaves_out_runs_that_are_not_ok_and_the_status_says_so():
    rows = [_row("dcgan", 0, {"fsd_synth1k": 10.0}), _row("dcgan", 1, {"fsd_synth1k": 12.0}),
            _row("dcgan", 2, {"fsd_synth1k": float("nan")}),  # a NaN metric: diverged
            _row("dcgan", 3, {"fsd_synth1k": 14.0}, status="suspect"),  # finished: counted, and flagged
            _row("vae", 0, {"fsd_synth1k": 5.0}, status="collapsed"),
            {"model": "vae", "seed": 1, "status": "failed", "error": "RuntimeError: boom", "metrics": {}, "final_losses": {}}]
    assert [report.run_status(r) for r in rows] == ["ok", "ok", "diverged", "suspect", "collapsed", "failed"]
    agg = report.aggregate(rows)
    assert agg["dcgan"]["fsd_synth1k"].values == (10.0, 12.0, 14.0)
    assert "fsd_synth1k" not in agg["vae"]
    assert agg["vae"]["images_per_s"].n == 1  # cost is counted for the collapsed run, not for the failed one
    groups = report.by_model(rows)
    assert report.status_summary(groups["dcgan"]) == "ok 2, suspect 1, diverged 1"
    notes = report.health_notes(rows)
    assert len(notes) == 4 and "RuntimeError: boom" in notes[-1] and "**diverged**" in notes[0]
    assert report.status_summary(groups["vae"]) == "collapsed 1, failed 1"


def test_pairwise_flags_only_differences_beyond_the_seed_spread():
    rows = [_row("a", s, {"fsd_synth1k": v}) for s, v in enumerate([10.0, 10.5, 9.5])]
    rows += [_row("b", s, {"fsd_synth1k": v}) for s, v in enumerate([20.0, 20.5, 19.5])]  # far from a
    rows += [_row("c", s, {"fsd_synth1k": v}) for s, v in enumerate([10.2, 11.5, 9.0])]  # within a's spread
    diffs = {(d.a, d.b): d for d in report.pairwise(rows, "fsd_synth1k")}
    assert diffs[("a", "b")].significant and diffs[("a", "b")].better == "a" and diffs[("a", "b")].overlap is False
    assert not diffs[("a", "c")].significant and diffs[("a", "c")].overlap is True


def test_metric_direction():
    assert report.metric_direction("fsd_synth1k") == -1
    assert report.metric_direction("recon1k/mae") == -1 and report.metric_direction("recon1k/psnr") == 1
    assert report.metric_direction("recon1k/ssim") == 1 and report.metric_direction("swap_gt/noswap_mae") == -1
    assert report.metric_direction("msssim_pairs1k") == 0
    assert report.metric_direction("fsd_synth1k/face_rate") == 1 and report.metric_direction("fd_dlib1k_full/gen_detected") == 1


def _many_metrics_rows():
    metrics = {"fsd_synth1k": 812.3456, "msssim_pairs1k": 0.2345, "recon1k/mae": 0.05678, "recon1k/psnr": 22.3,
               "recon1k/ssim": 0.62, "swap_id_retrieval": 0.875, "swap_attr_pose_error": 0.1234, "swap_gt/mae": 0.12}
    names = ["dcgan", "vae", "progan", "stylegan_a", "stylegan_b", "stylegan", "stylegan2", "faceswap_gan_long_name"]
    return [_row(m, s, {k: v * (1 + 0.01 * s + 0.1 * i) for k, v in metrics.items()})
            for i, m in enumerate(names) for s in range(3)]


@pytest.mark.parametrize("width", [100, 120, 200])
def test_terminal_table_fits_the_width_and_keeps_the_headline(width):
    rows = _many_metrics_rows()
    console = Console(width=width, record=True, color_system=None)
    report.print_summary(rows, ["fsd_synth1k", "msssim_pairs1k", "recon1k"], console=console)
    text = console.export_text()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    header = next(line for line in lines if "model" in line and "status" in line)
    for col in ("params", "img/s", "fsd_synth1k"):
        assert col in header
    assert "820.5 ± 8.1" in text  # the headline with its spread, not cut (dcgan: 812.3456 x mean(1, 1.01, 1.02))
    assert "faceswap_gan_long_name" in text
    assert all("…" not in line for line in lines)  # nothing truncated: columns that do not fit are left out
    if width >= 200:
        assert "swap_id_retrieval" in header and "recon1k/mae" in header


def test_terminal_table_is_narrower_than_the_markdown_table():
    rows = _many_metrics_rows()
    header, _ = report.model_table(rows)
    assert len(header) > 9  # report.md keeps every metric
    table = report.terminal_table(rows, ["fsd_synth1k"], width=100)
    assert len(table.columns) < len(header)


def _study_rows():
    """A study in which B beats A, StyleGAN2 < StyleGAN < ProGAN holds but ProGAN > DCGAN (reversed),
    and the VAE reconstructs better than FaceSwap."""
    fsd = {"stylegan_a": 900.0, "stylegan_b": 700.0, "stylegan2": 300.0, "stylegan": 500.0, "progan": 800.0,
           "dcgan": 600.0}
    rows = [_row(m, s, {"fsd_synth1k": v + 10.0 * (s - 1), "msssim_pairs1k": 0.2}) for m, v in fsd.items() for s in range(3)]
    rows += [_row("vae", s, {"recon1k/mae": 0.05 + 0.001 * s, "recon1k/psnr": 23.0 + 0.1 * s, "recon1k/ssim": 0.6 + 0.01 * s,
                             "fsd_synth1k": 850.0 + s}) for s in range(3)]
    rows += [_row("faceswap", s, {"recon1k/mae": 0.10 + 0.002 * s, "recon1k/psnr": 18.0 + 0.1 * s,
                                  "recon1k/ssim": 0.5 + 0.01 * s}) for s in range(3)]
    return rows


def test_study_answers_from_a_synthetic_results_json(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"config": {"metrics": ["fsd_synth1k", "msssim_pairs1k", "recon1k"]}, "results": _study_rows()}))
    ab, order, recon = report.study_answers(json.loads(path.read_text()))
    assert ab.holds is True and ab.answer.startswith("Yes") and "700 ± 10" in ab.answer and "900 ± 10" in ab.answer
    assert order.holds is False
    assert "reversed beyond the seed spread for progan vs dcgan" in order.answer
    assert "stylegan2 300 ± 10 ≤ stylegan 500 ± 10" in order.answer
    assert recon.answer.startswith("The VAE reconstructs better on 3 of 3 scores beyond the seed spread")
    assert any("recon1k/mae" in line for line in recon.evidence)

    # one seed (the demo): no spread, and the answer does not claim one
    one = [r for r in _study_rows() if r["seed"] == 0]
    _, _, recon1 = report.study_answers(one, "fsd_synth1k")
    assert recon1.answer.startswith("The VAE reconstructs better on 3 of 3 scores by the value (one seed")
    assert "beyond the seed spread" not in recon1.answer

    # a failed DCGAN is named as the reason, not silently ranked
    rows = [r for r in _study_rows() if r["model"] != "dcgan"]
    rows += [{"model": "dcgan", "seed": s, "status": "failed", "error": "x", "metrics": {}, "final_losses": {}} for s in range(3)]
    _, order, _ = report.study_answers(rows, "fsd_synth1k")
    assert order.holds is None and order.answer.startswith("Among the models that ran, yes")
    assert "Missing: ['dcgan']" in order.answer and "dcgan is failed" in order.answer


def test_study_answers_say_when_they_cannot_answer():
    rows = [_row("dcgan", 0, {"fsd_synth1k": 1.0})]
    ab, order, recon = report.study_answers(rows, "fsd_synth1k")
    assert ab.holds is None and ab.answer.startswith("not answered")
    assert order.holds is None and recon.holds is None
    # one seed each: the direction is given, the spread is not claimed
    rows = [_row("stylegan_a", 0, {"fsd_synth1k": 2.0}), _row("stylegan_b", 0, {"fsd_synth1k": 1.0})]
    ab = report.study_answers(rows, "fsd_synth1k")[0]
    assert ab.holds is None and "B is better by the mean (one seed" in ab.answer


def test_write_report_renders_from_rows_alone(tmp_path):
    rows = _study_rows()
    settings = {"metrics": ["fsd_synth1k", "recon1k"], "seeds": [0, 1, 2], "budget_images": 32000, "resolution": 32,
                "data_config": "synthetic_faces", "batch_size": 64, "trainer_config": "cpu"}
    path = report.write_report(settings, rows, tmp_path)
    text = path.read_text()
    for part in ("## Summary", "## Which differences exceed the spread between seeds", "## Study answers",
                 "## Every run", "Welch", "700 ± 10 [", "| stylegan_b | 3 | ok |"):
        assert part in text, part
    assert json.loads((tmp_path / "results.json").read_text())["results"] == rows
