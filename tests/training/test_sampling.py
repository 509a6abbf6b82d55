"""Length-bucketed train batches (coverage, sorting, seeding, ranks) and sorted evaluation batches."""

from __future__ import annotations

import numpy as np
import pytest

from scenesense.training.sampling import LengthBucketBatchSampler, length_sorted_batches

LENGTHS = np.random.default_rng(0).integers(1, 60, size=203)


def padded_steps(batches: list[list[int]]) -> int:
    return sum(len(b) * int(LENGTHS[b].max()) for b in batches)


def test_every_sample_once_in_batches_of_batch_size():
    batches = list(LengthBucketBatchSampler(LENGTHS, batch_size=8, pool=5, seed=1))
    assert sorted(i for b in batches for i in b) == list(range(203))
    # 203 samples = 5 pools of 40 + one of 3: every pool ends in a full batch except the last
    assert sorted(len(b) for b in batches) == [3] + [8] * 25
    assert len(LengthBucketBatchSampler(LENGTHS, 8, 5, seed=1)) == 26


def test_each_pool_is_sorted_so_batches_pad_less_than_random_ones():
    random_batches = list(LengthBucketBatchSampler(LENGTHS, 8, pool=1, seed=1))
    pooled = list(LengthBucketBatchSampler(LENGTHS, 8, pool=5, seed=1))
    whole = list(LengthBucketBatchSampler(LENGTHS, 8, pool=100, seed=1))  # one pool: a global sort
    assert padded_steps(whole) <= padded_steps(pooled) < padded_steps(random_batches)
    # one pool: the batches are consecutive runs of the sorted lengths
    ranked = sorted(whole, key=lambda b: LENGTHS[b].max())
    for a, b in zip(ranked, ranked[1:]):
        assert LENGTHS[a].max() <= LENGTHS[b].min()
    # pool=1 sorts only within each batch
    assert all(list(LENGTHS[b]) == sorted(LENGTHS[b]) for b in random_batches)


def test_same_seed_same_batches_other_seed_other_batches():
    a, b, c = (list(LengthBucketBatchSampler(LENGTHS, 8, 5, seed=s)) for s in (3, 3, 4))
    assert a == b != c


def test_ranks_split_the_same_batches_and_run_equal_steps():
    single = list(LengthBucketBatchSampler(LENGTHS, 8, 5, seed=2))
    ranks = [list(LengthBucketBatchSampler(LENGTHS, 8, 5, seed=2, rank=r, world_size=3)) for r in range(3)]
    assert [len(r) for r in ranks] == [8, 8, 8]  # 26 batches: the last 2 are left out
    assert [batch for step in zip(*ranks) for batch in step] == single[:24]


@pytest.mark.parametrize("kwargs, match", [
    ({"batch_size": 0}, "need batch_size"), ({"pool": 0}, "need batch_size"),
    ({"rank": 2, "world_size": 2}, "0 <= rank < world_size"), ({"lengths": [[1, 2]]}, "lengths must be 1-d"),
])
def test_bad_arguments(kwargs, match):
    args = {"lengths": LENGTHS, "batch_size": 8, "pool": 2, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=match):
        LengthBucketBatchSampler(**args)


def test_length_sorted_batches_hand_computed():
    # lengths 5, 1, 3, 1, 9: stable order 1, 3, 2, 0, 4 (the two 1s keep their order)
    assert length_sorted_batches([5, 1, 3, 1, 9], batch_size=2) == [[1, 3], [2, 0], [4]]
    assert length_sorted_batches([], batch_size=2) == []
    whole = length_sorted_batches(LENGTHS, 8)
    assert sorted(i for b in whole for i in b) == list(range(203))
    random_order = [list(range(i, min(i + 8, 203))) for i in range(0, 203, 8)]
    assert padded_steps(whole) < padded_steps(random_order) / 1.5


@pytest.mark.parametrize("lengths, batch_size", [([[1, 2]], 2), ([1, 2], 0)])
def test_length_sorted_batches_bad_arguments(lengths, batch_size):
    with pytest.raises(ValueError, match="need 1-d lengths and batch_size >= 1"):
        length_sorted_batches(lengths, batch_size)
