"""Plots: files appear, are valid images and leave no temporary files or pyplot state."""

from __future__ import annotations

import matplotlib
import numpy as np
import pytest
from matplotlib import image as mpimg

from scenesense.evaluation.plots import plot_confusion_matrix, plot_loss_curves

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _assert_png(path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 1000
    image = mpimg.imread(path)
    assert image.ndim == 3
    assert image.shape[0] > 100
    assert image.shape[1] > 100


def test_loss_curves_png(tmp_path):
    history = [{"epoch": e, "train_loss": 1.0 / e, "dev_loss": 1.0 + (e - 3) ** 2 / 10, "epoch_time": 0.1}
               for e in range(1, 8)]
    backend = matplotlib.get_backend()
    out = plot_loss_curves(history, tmp_path / "sub" / "loss.png", title="toy")
    assert out == tmp_path / "sub" / "loss.png"
    _assert_png(out)
    assert matplotlib.get_backend() == backend  # global state untouched
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["loss.png"]


@pytest.mark.parametrize("normalize", [True, False])
def test_confusion_matrix_png_and_other_formats(tmp_path, normalize):
    cm = np.array([[5, 1, 0], [2, 3, 0], [0, 0, 0]])  # last class has no samples
    names = ["a", "b", "c"]
    _assert_png(plot_confusion_matrix(cm, names, tmp_path / "cm.png", normalize=normalize))
    svg = plot_confusion_matrix(cm.tolist(), names, tmp_path / "cm.svg", normalize=normalize, title="x")
    assert b"<svg" in svg.read_bytes()[:500]


def test_bad_inputs_raise(tmp_path):
    with pytest.raises(ValueError, match=r"cm must be \[2, 2\]"):
        plot_confusion_matrix(np.zeros((3, 3)), ["a", "b"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="empty"):
        plot_loss_curves([], tmp_path / "x.png")
    with pytest.raises(ValueError, match="dev_loss"):
        plot_loss_curves([{"train_loss": 1.0}], tmp_path / "x.png")
    assert not list(tmp_path.iterdir())


def test_modality_weights_per_class_by_hand(tmp_path):
    from scenesense.evaluation.plots import modality_weights_per_class, plot_modality_weights

    weights = {"text": np.array([[0.2, 0.4], [0.6, 0.8], [1.0, 1.0]]), "audio": np.array([0.9, 0.1, 0.5])}
    labels = np.array([0, 0, 1])
    means = modality_weights_per_class(weights, labels, 3)
    np.testing.assert_allclose(means["text"][:2], [(0.3 + 0.7) / 2, 1.0])
    np.testing.assert_allclose(means["audio"][:2], [0.5, 0.5])
    assert np.isnan(means["text"][2])  # class 2 has no sample
    path = plot_modality_weights(weights, labels, ["a", "b", "c"], tmp_path / "w.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_with_a_weighting_fusion_plots_its_weights(tmp_path):
    from scenesense import api
    from scenesense.config import build_config

    cfg = build_config({"modalities": ["audio", "text"], "data": {"dataset": "synthetic",
                        "params": {"n_train": 64, "n_dev": 32, "n_test": 8, "dim": 8}},
                        "model": {"out_dim": 8, "head_hidden_dim": 8, "fusion": {"name": "amw"},
                                  "sequence_encoder": {"name": "transformer", "params": {"num_layers": 1, "num_heads": 2}}},
                        "trainer": {"epochs": 1, "batch_size": 16, "progress": False}})
    run = api.train(cfg, tmp_path / "run").run_dir
    assert (run / "modality_weights.png").read_bytes()[:4] == b"\x89PNG"


def test_sample_attention_maps_crop_to_the_sample_s_real_steps():
    from scenesense.evaluation.plots import sample_attention_maps

    maps = np.arange(2 * 4 * 3, dtype=float).reshape(2, 4, 3)  # [B=2, T_text=4, T_vision=3]
    masks = {"text": np.array([[True, True, True, True], [True, True, False, False]]),
             "vision": np.array([[True, False, False], [True, True, True]])}
    attention = {"text->vision": maps, "vision->text": maps.transpose(0, 2, 1),
                 "audio->text": np.ones((2, 1, 4)),  # audio has no mask: its one row is kept
                 "modalities": np.full((2, 3, 3), 1 / 3)}
    first = sample_attention_maps(attention, masks, index=0)
    assert sorted(first) == ["audio->text", "modalities", "text->vision", "vision->text"]
    np.testing.assert_array_equal(first["text->vision"], maps[0][:, :1])  # 4 text rows, 1 vision column
    np.testing.assert_array_equal(first["vision->text"], maps[0].T[:1, :])
    assert first["audio->text"].shape == (1, 4)
    assert first["modalities"].shape == (3, 3)  # not "q->k": never cropped
    second = sample_attention_maps(attention, masks, index=1)
    np.testing.assert_array_equal(second["text->vision"], [[12, 13, 14], [15, 16, 17]])
    assert second["vision->text"].shape == (3, 2)
    assert second["audio->text"].shape == (1, 2)
    # a text mask of 4 steps does not fit a map with 2 text rows: both rows are kept
    shorter = sample_attention_maps({"text->vision": maps[:, :2, :]}, masks, index=1)
    np.testing.assert_array_equal(shorter["text->vision"], maps[1][:2])
    # per-step weights of one modality keep that modality's real steps
    steps = sample_attention_maps({"text:steps": np.arange(8.0).reshape(2, 1, 4)}, masks, index=1)
    np.testing.assert_array_equal(steps["text:steps"], [[4.0, 5.0]])


def test_sample_attention_maps_drop_a_missing_modality_and_check_shapes():
    from scenesense.evaluation.plots import sample_attention_maps

    masks = {"text": np.array([[False, False]]), "vision": np.array([[True, True, True]])}
    maps = {"text->vision": np.ones((1, 2, 3)), "vision->text": np.ones((1, 3, 2))}
    assert sample_attention_maps(maps, masks) == {}  # text missing: no row, no column
    with pytest.raises(ValueError, match=r"\[B, T_q, T_k\]"):
        sample_attention_maps({"x->y": np.ones((2, 3))}, {})
    with pytest.raises(ValueError, match="outside the batch"):
        sample_attention_maps({"x->y": np.ones((1, 2, 3))}, {}, index=1)


def test_attention_maps_png(tmp_path):
    from scenesense.evaluation.plots import plot_attention_maps

    maps = {"text->vision": np.random.default_rng(0).dirichlet(np.ones(5), size=7),  # [7, 5]
            "modalities": np.full((3, 3), 1 / 3)}
    out = plot_attention_maps(maps, tmp_path / "attention.png", title="toy", sample_id="dia1_utt2",
                              modality_names=["audio", "text", "vision"])
    assert out == tmp_path / "attention.png"
    _assert_png(out)
    assert [p.name for p in tmp_path.iterdir()] == ["attention.png"]
    with pytest.raises(ValueError, match="no attention map"):
        plot_attention_maps({}, tmp_path / "x.png")
    with pytest.raises(ValueError, match="non-empty"):
        plot_attention_maps({"a->b": np.ones((0, 3))}, tmp_path / "x.png")


def _tiny_demo_config(fusion, tmp_path):
    from scenesense.config import build_config
    from scenesense.demo import DEMO_DELTA

    return build_config(DEMO_DELTA, {"data": {"params": {"n_train": 60, "n_dev": 30, "n_test": 30},
                                              "cache_dir": str(tmp_path / "cache")},
                                     "model": {"fusion": {"name": fusion}},
                                     "trainer": {"epochs": 1}})


@pytest.mark.parametrize(("fusion", "expected"), [("cross_attention", True), ("concat", False)])
def test_a_run_plots_the_first_dev_sample_s_attention_when_the_fusion_has_maps(tmp_path, fusion, expected):
    from scenesense import api

    run = api.train(_tiny_demo_config(fusion, tmp_path), tmp_path / "run").run_dir
    path = run / "attention.png"
    assert path.exists() is expected
    if expected:
        _assert_png(path)


MODELS = ["audio+text+vision/concat", "audio+text+vision/cross_attention", "audio+text+vision/hadamard",
          "audio+text+vision/residual", "audio+text+vision/residual_cross_attention"]


def test_the_per_class_f1_legend_covers_no_bar(tmp_path, monkeypatch):
    from scenesense.evaluation.comparison_plots import plot_per_class_f1
    from tests.support.figures import catch_saved_figures, covered

    drawn = catch_saved_figures(monkeypatch)
    names = ["text_a", "text_b", "audio_a", "audio_b", "sync", "async"]
    rng = np.random.default_rng(0)
    scores = {m: rng.uniform(0.9, 1.0, len(names)) for m in MODELS}  # tall bars: no free corner inside
    _assert_png(plot_per_class_f1(scores, names, tmp_path / "f1.png",
                                  errors={m: np.full(len(names), 0.02) for m in MODELS}))
    (fig,) = drawn
    assert len(fig.axes[0].patches) == len(MODELS) * len(names)
    assert covered(fig) == []


def test_loss_and_robustness_legends_cover_no_line(tmp_path, monkeypatch):
    from scenesense.evaluation.comparison_plots import plot_degradation_curves, plot_loss_overlay
    from tests.support.figures import catch_saved_figures, covered

    drawn = catch_saved_figures(monkeypatch)
    histories = {m: [[{"train_loss": 2.0 - 0.1 * e - 0.01 * i, "dev_loss": 2.1 - 0.08 * e}
                      for e in range(12)]] for i, m in enumerate(MODELS)}
    plot_loss_overlay(histories, tmp_path / "loss.png")
    curves = {"noise audio": {m: ([20.0, 10.0, 0.0], [0.9, 0.6 - 0.01 * i, 0.3])
                              for i, m in enumerate(MODELS)},
              "drop_frames text": {m: ([0.2, 0.5], [0.8, 0.5]) for m in MODELS}}
    plot_degradation_curves(curves, tmp_path / "robustness.png", clean={m: 0.95 for m in MODELS})
    assert len(drawn) == 2
    for fig in drawn:
        assert covered(fig) == []


def test_a_run_s_own_figures_keep_their_legends_off_the_data(tmp_path, monkeypatch):
    from scenesense.evaluation.plots import plot_modality_weights
    from tests.support.figures import catch_saved_figures, covered

    drawn = catch_saved_figures(monkeypatch)
    history = [{"epoch": e, "train_loss": 1.0 / e, "dev_loss": 1.0 / e + 0.1} for e in range(1, 8)]
    plot_loss_curves(history, tmp_path / "loss.png")
    weights = {"audio": np.full(6, 0.95), "text": np.full(6, 0.9)}
    plot_modality_weights(weights, np.array([0, 0, 1, 1, 2, 2]), ["a", "b", "c"], tmp_path / "w.png")
    for fig in drawn:
        assert covered(fig) == []


def test_dollar_signs_in_ids_names_and_titles_are_plain_text(tmp_path):
    from scenesense.evaluation.plots import plot_attention_maps

    maps = {"text->vision": np.full((2, 3), 1 / 3)}
    mmsa_id = "03bSnISJMiM$_$1"  # MMSA ids join video and clip with "$_$", which mathtext cannot parse
    _assert_png(plot_attention_maps(maps, tmp_path / "a.png", title="run $x$_", sample_id=mmsa_id))
    _assert_png(plot_confusion_matrix(np.eye(2, dtype=int), ["a$", "$b"], tmp_path / "c.png", title="$$"))
