from __future__ import annotations

import pytest
import torch

from scenesense.models.modality_dropout import ModalityDropout

MODALITIES = ("vision", "audio", "text")


def _draw(dropout, n, batch_size=4):
    return [dropout(MODALITIES, batch_size) for _ in range(n)]


def test_batch_mode_one_draw_per_modality_shared_by_the_batch():
    torch.manual_seed(0)
    draws = _draw(ModalityDropout(0.5, "batch").train(), 400)
    for flags in draws:
        assert sorted(flags) == sorted(MODALITIES)
        for f in flags.values():
            assert f.shape == (4,)
            assert f.dtype == torch.bool
            assert f.all() or not f.any()  # same decision for every sample
    kept = torch.stack([torch.stack([f[0] for f in flags.values()]) for flags in draws]).float()  # [400, 3]
    assert 0.4 < kept.mean() < 0.6  # p = 0.5, no rescaling
    assert (kept.sum(1) == 0).any()  # the paper's mode may drop every modality (p^3 = 1/8 per batch)


def test_sample_mode_is_per_sample_and_keeps_at_least_one():
    torch.manual_seed(0)
    draws = _draw(ModalityDropout(0.9, "sample").train(), 200, batch_size=16)
    kept = torch.stack(
        [torch.stack([flags[m] for m in sorted(flags)], dim=1) for flags in draws]
    )  # [200, 16, 3]
    assert kept.any(dim=2).all()  # every sample keeps a modality
    assert (kept.sum(dim=2) == 1).float().mean() > 0.5  # with p = 0.9 most samples keep exactly one
    per_sample = kept[:, :, 0]
    assert (per_sample.any(dim=1) & ~per_sample.all(dim=1)).any()  # samples of one batch differ


@pytest.mark.parametrize("mode", ["batch", "sample"])
def test_inactive_in_eval_with_p0_and_with_one_modality(mode):
    torch.manual_seed(0)
    for dropout, modalities in [
        (ModalityDropout(0.9, mode).eval(), MODALITIES),
        (ModalityDropout(0.0, mode).train(), MODALITIES),
        (ModalityDropout(0.9, mode).train(), ("text",)),
    ]:
        for _ in range(20):
            assert all(f.all() for f in dropout(modalities, 3).values())


def test_errors():
    with pytest.raises(ValueError, match=r"\[0, 1\), got 1.0"):
        ModalityDropout(1.0)
    with pytest.raises(ValueError, match="'per_sample'"):
        ModalityDropout(0.5, "per_sample")
