"""The built-in synthetic benchmark: a store whose structure says which fusion captures what.

Six equally frequent classes over three modalities. ``text`` and ``vision`` are ``[L, D]``
sequences on one shared time grid (the same length ``L ~ U{min_len..max_len}`` per sample);
``audio`` is a ``[D]`` vector. All event directions are orthonormal (`synthetic_prototypes`),
and every step and vector carries i.i.d. Gaussian noise: std ``noise`` for text and audio,
``1.5 * noise`` for vision (the noisy modality).

=========  ==========================================  ====================================
class      text                                        vision / audio
=========  ==========================================  ====================================
text_a     event ``text_a`` on steps [p, p + 3)         nothing class-specific
text_b     event ``text_b`` on steps [p, p + 3)         nothing class-specific
audio_a    no class event                              audio += ``audio_a`` prototype
audio_b    no class event                              audio += ``audio_b`` prototype
sync       event ``A`` on steps [p, p + 3)              vision event ``B`` on [q, q + 3), q = p
async      event ``A`` on steps [p, p + 3)              vision event ``B`` on [q, q + 3), |p-q| >= 4
=========  ==========================================  ====================================

Events have norm 6 per step (audio prototypes: 4) and span 3 consecutive steps (so they survive
mean pooling, and co-occurring events overlap for 3 steps). Shared by every class (so none of it is a shortcut):

- vision carries event ``B`` at a uniform step q in *every* sample, and nothing else; vision
  alone is therefore uninformative, and only its alignment with text matters;
- text carries one distractor event (one of two directions) at a uniform step other than p,
  and audio carries one distractor direction, so "this modality contains an event" is no cue.

Sync vs async. With ``S = L - 2`` possible start steps, p is uniform on ``[0, S)``; async draws
``k ~ U{4..S-4}`` and sets ``q = (p + k) mod S``, which keeps q uniform and ``|p - q|`` (= k or
S - k) at least 4, so the two events never overlap. Hence the
per-modality distributions of sync and async samples are *identical* (text: A at a uniform step;
vision: B at a uniform step; same lengths, audio, noise); only the *joint* placement differs.
A model that mean-pools each modality before fusing (concat, hadamard on pooled raw features)
is at chance on sync/async by construction, while one that aligns the sequences (cross-attention)
can solve them. Expected ceilings: text-only 4/6 (text_a, text_b, sync+async merged, audio
classes merged), pooled fusions 5/6, aligned fusion close to 6/6.

Caveat: a learned per-modality encoder with positional encodings can in principle write the
*position* of an event into its pooled vector, and a fusion can then compare positions; the
chance guarantee holds for position-agnostic pooling of the raw features (see the tests).

Missing modalities (``missing_rate``): each (sample, modality) is dropped independently with
that probability (``present`` False, data zero, length 0); when all three would be dropped,
one modality chosen at random is kept. Everything is drawn from ``numpy.random.SeedSequence(seed)``
(one child stream for the prototypes, one per split), so the same seed gives byte-identical arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from scenesense.config import ConfigError
from scenesense.data.labels import LabelSpace
from scenesense.data.store import FeatureSpec, StoreWriter

SYNTHETIC_CLASSES = LabelSpace(("text_a", "text_b", "audio_a", "audio_b", "sync", "async"))
PROTOTYPE_NAMES: tuple[str, ...] = (
    "text_a", "text_b", "audio_a", "audio_b", "event_a", "event_b", "distractor_0", "distractor_1",
)
DESIGN_VERSION = 2
TEXT_EVENT_SCALE = 6.0  # norm of a text/vision event at one step (per-step noise std is `noise`)
EVENT_WIDTH = 3  # every text and vision event spans this many consecutive steps
AUDIO_EVENT_SCALE = 4.0  # norm of an audio prototype or distractor
VISION_NOISE_FACTOR = 1.5  # vision noise std = VISION_NOISE_FACTOR * noise
MIN_ASYNC_GAP = EVENT_WIDTH + 1  # async events never overlap in time
MIN_LEN = 2 * MIN_ASYNC_GAP + EVENT_WIDTH - 1  # shortest length with room for an async pair
_WRITE_BATCH = 512


def synthetic_prototypes(seed: int, dim: int) -> dict[str, np.ndarray]:
    """The orthonormal event directions used by `generate_synthetic` for ``seed``.

    Returns:
        Name (see `PROTOTYPE_NAMES`) -> unit vector ``[dim]`` (float64).
    """
    _validate_dim(dim)
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(4)[0])
    basis, _ = np.linalg.qr(rng.standard_normal((dim, len(PROTOTYPE_NAMES))))  # [dim, 8] orthonormal
    return {name: basis[:, i].copy() for i, name in enumerate(PROTOTYPE_NAMES)}


def _is_int(value: Any) -> bool:  # noqa: ANN401
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:  # noqa: ANN401
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _validate_dim(dim: int) -> None:
    if not _is_int(dim) or dim < len(PROTOTYPE_NAMES):
        raise ConfigError(f"synthetic data: dim must be an int >= {len(PROTOTYPE_NAMES)}, got {dim!r}")


def _validate_params(sizes: dict[str, int], seed: int, dim: int, min_len: int, max_len: int,
                     noise: float, missing_rate: float) -> None:
    """Raise `ConfigError` (a ValueError) naming the first invalid generator parameter."""
    for name, n in sizes.items():
        if not _is_int(n) or n < 1:
            raise ConfigError(f"synthetic data: {name} must be a positive int, got {n!r}")
    if not _is_int(seed) or not 0 <= seed < 2**32:
        raise ConfigError(f"synthetic data: seed must be an int in [0, 2**32), got {seed!r}")
    _validate_dim(dim)
    if not (_is_int(min_len) and _is_int(max_len)) or min_len < MIN_LEN:
        raise ConfigError(f"synthetic data: min_len must be an int >= {MIN_LEN} (and max_len an int), "
                          f"got {min_len!r}")
    if max_len < min_len:
        raise ConfigError(f"synthetic data: max_len ({max_len!r}) must be >= min_len ({min_len!r})")
    if not _is_number(noise) or not 0 <= noise < float("inf"):
        raise ConfigError(f"synthetic data: noise must be a finite number >= 0, got {noise!r}")
    if not _is_number(missing_rate) or not 0.0 <= missing_rate < 1.0:
        raise ConfigError(f"synthetic data: missing_rate must be in [0, 1), got {missing_rate!r}")


def _uniform_step(rng: np.random.Generator, upper: np.ndarray) -> np.ndarray:
    """``[N]`` ints, each uniform on ``[0, upper_i)``."""
    return np.floor(rng.random(upper.shape) * upper).astype(np.int64)


def _make_split(rng: np.random.Generator, n: int, protos: dict[str, np.ndarray], dim: int,
                min_len: int, max_len: int, noise: float, missing_rate: float) -> dict[str, np.ndarray]:
    """Draw one split.

    Returns:
        labels ``[N]``, lengths ``[N]``, text/vision ``[N, max_len, D]`` (zero beyond the length),
        audio ``[N, D]``, missing ``[N, 3]`` (audio, text, vision).
    """
    c = SYNTHETIC_CLASSES.id_of
    labels = rng.permutation(np.arange(n) % SYNTHETIC_CLASSES.num_classes)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    text = rng.normal(0.0, noise, size=(n, max_len, dim))  # [N, T, D]
    vision = rng.normal(0.0, VISION_NOISE_FACTOR * noise, size=(n, max_len, dim))  # [N, T, D]
    audio = rng.normal(0.0, noise, size=(n, dim))  # [N, D]
    width = EVENT_WIDTH  # every text/vision event covers this many consecutive steps
    starts = lengths - width + 1  # [N] possible start steps
    p = _uniform_step(rng, starts)  # the text event covers steps [p, p + width)
    gap = MIN_ASYNC_GAP + _uniform_step(rng, starts - 2 * MIN_ASYNC_GAP + 1)  # in [gap, starts - gap]
    q = np.where(labels == c("sync"), p,
                 np.where(labels == c("async"), (p + gap) % starts, _uniform_step(rng, starts)))
    r = (p + width + _uniform_step(rng, lengths - width)) % lengths  # distractor step, outside the event
    text_distractor = rng.integers(0, 2, size=n)
    audio_distractor = rng.integers(0, 2, size=n)
    rows = np.arange(n)
    text_event = np.zeros((n, dim))
    class_to_event = {"text_a": "text_a", "text_b": "text_b", "sync": "event_a", "async": "event_a"}
    for name, proto in class_to_event.items():
        text_event[labels == c(name)] = protos[proto]
    for offset in range(width):
        text[rows, p + offset] += TEXT_EVENT_SCALE * text_event
        vision[rows, q + offset] += TEXT_EVENT_SCALE * protos["event_b"]
    text[rows, r] += TEXT_EVENT_SCALE * np.stack([protos[f"distractor_{k}"] for k in text_distractor])
    audio += AUDIO_EVENT_SCALE * np.stack([protos[f"distractor_{k}"] for k in audio_distractor])
    for name in ("audio_a", "audio_b"):
        audio[labels == c(name)] += AUDIO_EVENT_SCALE * protos[name]
    beyond = np.arange(max_len)[None, :] >= lengths[:, None]  # [N, T] padding
    text[beyond] = 0.0
    vision[beyond] = 0.0
    missing = rng.random((n, 3)) < missing_rate
    keep = rng.integers(0, 3, size=n)
    all_missing = missing.all(axis=1)
    missing[all_missing, keep[all_missing]] = False
    return {"labels": labels, "lengths": lengths, "text": text.astype(np.float32),
            "vision": vision.astype(np.float32), "audio": audio.astype(np.float32), "missing": missing}


def _write_split(path: Path, split: str, data: dict[str, np.ndarray], dim: int, max_len: int,
                 params: dict[str, Any]) -> None:
    provenance = {"generator": "scenesense.data.synthetic", "design_version": DESIGN_VERSION, **params}
    specs = {
        "audio": FeatureSpec("audio", "vector", dim, provenance=provenance),
        "text": FeatureSpec("text", "sequence", dim, max_len=max_len, provenance=provenance),
        "vision": FeatureSpec("vision", "sequence", dim, max_len=max_len, provenance=provenance),
    }
    source = {"dataset": "synthetic", "split": split, **provenance}
    n = len(data["labels"])
    with StoreWriter(path, label_space=SYNTHETIC_CLASSES, features=specs, source=source) as writer:
        for start in range(0, n, _WRITE_BATCH):
            rows = range(start, min(n, start + _WRITE_BATCH))
            features = {
                m: [None if data["missing"][i, j] else
                    (data[m][i] if m == "audio" else data[m][i, : data["lengths"][i]]) for i in rows]
                for j, m in enumerate(("audio", "text", "vision"))
            }
            writer.append([f"syn-{split}-{i:06d}" for i in rows], data["labels"][start:rows.stop], features)


def generate_synthetic(
    out_dir: str | Path,
    *,
    n_train: int = 2400,
    n_dev: int = 600,
    n_test: int = 600,
    seed: int = 0,
    dim: int = 32,
    min_len: int = 12,
    max_len: int = 20,
    noise: float = 1.0,
    missing_rate: float = 0.0,
) -> Path:
    """Write the synthetic benchmark store (``train.h5``, ``dev.h5``, ``test.h5``).

    Args:
        out_dir: store directory (created if needed; existing split files are replaced).
        n_train: training samples (classes are balanced up to one sample when not divisible by 6).
        n_dev: dev samples.
        n_test: test samples.
        seed: master seed; the same seed gives byte-identical arrays.
        dim: feature size ``D`` of every modality (>= 8).
        min_len: shortest text/vision sequence (>= 6, so async can keep steps 3 apart).
        max_len: longest text/vision sequence.
        noise: Gaussian noise std on every text/audio value (vision: 1.5x).
        missing_rate: per (sample, modality) probability of a missing modality.

    Returns:
        ``out_dir`` as a `pathlib.Path`. Feature sets: ``text`` ``[N, T, D]`` and
        ``vision`` ``[N, T, D]`` (sequences), ``audio`` ``[N, D]`` (vector).

    Raises:
        ConfigError: an invalid parameter (a ValueError).
    """
    sizes = {"n_train": n_train, "n_dev": n_dev, "n_test": n_test}
    _validate_params(sizes, seed, dim, min_len, max_len, noise, missing_rate)
    params: dict[str, Any] = {**sizes, "seed": seed, "dim": dim, "min_len": min_len, "max_len": max_len,
                              "noise": float(noise), "missing_rate": float(missing_rate)}
    protos = synthetic_prototypes(seed, dim)
    streams = np.random.SeedSequence(seed).spawn(4)[1:]
    out = Path(out_dir)
    for (split, n), stream in zip((("train", n_train), ("dev", n_dev), ("test", n_test)), streams):
        data = _make_split(np.random.default_rng(stream), n, protos, dim, min_len, max_len,
                           float(noise), float(missing_rate))
        _write_split(out / f"{split}.h5", split, data, dim, max_len, params)
    return out
