"""Contract fixtures and writers of tiny files for ``ravdess``, ``openface`` and ``table``.

Writers produce the real layouts: RAVDESS ``Actor_XX/03-01-EE-II-SS-RR-AA.wav`` (16-bit PCM via
:mod:`wave`, 48 kHz or 16 kHz, mono or stereo) plus ``openface_au_mfcc.csv`` (``file``, 35 AU
columns, 259 ``mfcc_stat_*`` columns, rows in shuffled order); OpenFace 2 ``FeatureExtraction``
per-frame CSVs with their full 714-column header and ``", "`` separators; bring-your-own CSV/NPZ
feature tables with a labels CSV.
"""

from __future__ import annotations

import random
import wave
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

AU_NAMES_R = ("AU01", "AU02", "AU04", "AU05", "AU06", "AU07", "AU09", "AU10", "AU12", "AU14", "AU15", "AU17",
              "AU20", "AU23", "AU25", "AU26", "AU45")
AU_NAMES_C = (*AU_NAMES_R[:-1], "AU28", "AU45")
AU_COLUMNS = [f"{a}_r" for a in AU_NAMES_R] + [f"{a}_c" for a in AU_NAMES_C]  # 17 + 18 = 35
MFCC_COLUMNS = [f"mfcc_stat_{i:03d}" for i in range(259)]


# --- RAVDESS ---------------------------------------------------------------------------------------

def ravdess_name(emotion: int, actor: int, intensity: int = 1, statement: int = 1, repetition: int = 1,
                 channel: int = 1, modality: int = 3, ext: str = "wav") -> str:
    """A RAVDESS file name from its fields."""
    fields = (modality, channel, emotion, intensity, statement, repetition, actor)
    return "-".join(f"{f:02d}" for f in fields) + f".{ext}"


def tone(seconds: float, rate: int, f0: float, amplitude: float = 0.3) -> np.ndarray:
    """``[S]`` int16 samples of a voiced-like tone: 4 harmonics of ``f0`` gliding +-10 % at 2 Hz,
    loudness swelling at 3 Hz (openSMILE finds pitch and loudness in it)."""
    t = np.arange(int(round(seconds * rate))) / rate
    phase = 2 * np.pi * f0 * (t - 0.1 * np.cos(2 * np.pi * 2 * t) / (2 * np.pi * 2))
    signal = sum(np.sin(k * phase) / k for k in range(1, 5)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    return np.round(amplitude * 32767 * signal / (np.abs(signal).max() or 1.0)).astype("<i2")


def write_wav(path: Path, rate: int = 16000, channels: int = 1, frames: int = 32, width: int = 2,
              seconds: float | None = None, f0: float = 200.0, amplitude: float = 0.3) -> Path:
    """A PCM WAV written with :mod:`wave`: a tiny ramp of ``frames`` frames, or (``seconds`` given,
    16-bit only) a :func:`tone` of ``f0`` Hz and peak ``amplitude``, the same on every channel."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = (np.arange(frames * channels) % 100).astype("<i2" if width == 2 else np.uint8)
    if seconds is not None:
        samples = np.repeat(tone(seconds, rate, f0, amplitude), channels)  # interleaved [S * C]
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(samples.tobytes())
    return path


def write_mp4(path: Path, seconds: float, f0: float | None = None) -> Path:
    """A 32x32 ``mpeg4`` video of ``seconds`` (PyAV), with an AAC :func:`tone` track of ``f0`` Hz
    at 16 kHz when ``f0`` is given, else no audio stream."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        video = container.add_stream("mpeg4", rate=10)
        video.width = video.height = 32
        video.pix_fmt = "yuv420p"
        audio = None if f0 is None else container.add_stream("aac", rate=16000, layout="mono")
        frames = [av.VideoFrame.from_ndarray(np.full((32, 32, 3), 10 * i, np.uint8), format="rgb24")
                  for i in range(max(1, int(seconds * 10)))]
        for frame in [*frames, None]:
            container.mux(video.encode(frame))
        if audio is not None:
            samples = tone(seconds, 16000, f0)[None, :]  # [1, S] int16
            for start in range(0, samples.shape[1], 1024):
                chunk = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples[:, start:start + 1024]),
                                                   format="s16", layout="mono")
                chunk.sample_rate, chunk.pts = 16000, start
                container.mux(audio.encode(chunk))
            container.mux(audio.encode(None))
    return path


def table_values(name: str) -> tuple[list[float], list[float]]:
    """AU and mfcc values derived from the name: AU01_r = emotion/2, AU02_r = actor/10,
    AU01_c = repetition - 1; mfcc_stat_000 = actor, mfcc_stat_001 = emotion, mfcc j = j/1000 else."""
    fields = [int(f) for f in name.split(".")[0].split("-")]
    emotion, repetition, actor = fields[2], fields[5], fields[6]
    au = [0.25] * 35
    au[0], au[1], au[17] = emotion / 2, actor / 10, float(repetition - 1)
    mfcc = [j / 1000 for j in range(259)]
    mfcc[0], mfcc[1] = float(actor), float(emotion)
    return au, mfcc


def write_clip_table(path: Path, names: Iterable[str], *, seed: int = 0,
                     overrides: dict[tuple[str, str], str] | None = None) -> Path:
    """``openface_au_mfcc.csv`` with one row per name, rows shuffled; ``overrides`` maps
    (name, column) -> cell text."""
    names = list(names)
    random.Random(seed).shuffle(names)
    lines = [",".join(["file", *AU_COLUMNS, *MFCC_COLUMNS])]
    for name in names:
        au, mfcc = table_values(name)
        cells = [f"{v:g}" for v in au + mfcc]
        for (key, column), text in (overrides or {}).items():
            if key == name:
                cells[(AU_COLUMNS + MFCC_COLUMNS).index(column)] = text
        lines.append(",".join([name, *cells]))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def speech_names(actor: int, full: bool = False) -> list[str]:
    """All 60 speech names of an actor (``full``) or 4 of them (emotions 1, 3, 5, 8)."""
    if not full:
        return [ravdess_name(e, actor, repetition=1 + e % 2) for e in (1, 3, 5, 8)]
    return [ravdess_name(e, actor, i, s, r) for e in range(1, 9) for i in ((1,) if e == 1 else (1, 2))
            for s in (1, 2) for r in (1, 2)]


def clip_f0(name: str) -> float:
    """Pitch of a clip's tone: 120 Hz + 15 Hz per emotion + 5 Hz per actor."""
    fields = [int(f) for f in name.split(".")[0].split("-")]
    return 120.0 + 15 * fields[2] + 5 * fields[6]


def write_ravdess(root: Path, actors: Sequence[int] = (1, 2, 3), *, full: bool = False, table: bool = True,
                  extra_names: Sequence[str] = (), seconds: float | None = None) -> Path:
    """A RAVDESS tree: actors 1-2 at 48 kHz (actor 1's first clip stereo), others 16 kHz mono;
    ``openface_au_mfcc.csv`` (shuffled rows) for every speech clip. Clips are tiny ramps, or
    with ``seconds`` tones of :func:`clip_f0` (for audio feature extraction)."""
    names = []
    for actor in actors:
        rate = 48000 if actor <= 2 else 16000
        for k, name in enumerate(speech_names(actor, full)):
            write_wav(root / "audio" / f"Actor_{actor:02d}" / name, rate, 2 if actor == 1 and k == 0 else 1,
                      seconds=seconds, f0=clip_f0(name))
            names.append(name)
    for name in extra_names:
        write_wav(root / "audio" / f"Actor_{name[-6:-4]}" / name, 16000)
    if table:
        write_clip_table(root / "openface_au_mfcc.csv", names)
    return root


def _ravdess(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return write_ravdess(tmp_path / "ravdess"), {"train_actors": [1, 2], "dev_actors": [3]}


def _ravdess_corrupt(root: Path) -> str:
    path = root / "audio" / "Actor_03" / speech_names(3)[1]
    path.write_bytes(path.read_bytes()[:30])  # cut inside the RIFF header
    return path.name


# --- OpenFace ----------------------------------------------------------------------------------------

def openface_header(face_id: bool = True) -> list[str]:
    """The 714 column names of an OpenFace 2.2 FeatureExtraction CSV (709 in older 2.0 files)."""
    eye = [f"eye_lmk_{axis}_{i}" for axis in ("x", "y", "X", "Y", "Z") for i in range(56)]
    landmarks = [f"{axis}_{i}" for axis in ("x", "y", "X", "Y", "Z") for i in range(68)]
    return (["frame", *(["face_id"] if face_id else []), "timestamp", "confidence", "success"]
            + [f"gaze_{e}_{a}" for e in (0, 1) for a in "xyz"] + ["gaze_angle_x", "gaze_angle_y"] + eye
            + [f"pose_{p}" for p in ("Tx", "Ty", "Tz", "Rx", "Ry", "Rz")] + landmarks
            + ["p_scale", "p_rx", "p_ry", "p_rz", "p_tx", "p_ty"] + [f"p_{i}" for i in range(34)]
            + AU_COLUMNS)


def write_openface_csv(path: Path, n_frames: int, *, failed: Sequence[int] = (), face_id: bool = True,
                       extra_faces: Sequence[int] = (), bad: tuple[int, str, str] | None = None) -> Path:
    """A per-frame CSV as OpenFace writes it (``", "`` between names and values). Frame ``f``
    (1-based) has AU column ``j`` = ``f + j / 100`` and pose_Rx = ``-f``; frames in ``failed``
    have success 0 (and zeros); each frame in ``extra_faces`` gets a second row with face_id 1.
    ``bad`` = (frame, column, text) replaces one cell."""
    header = openface_header(face_id)
    lines = [", ".join(header)]

    def row(frame: int, face: int) -> str:
        ok = frame not in failed
        values = dict.fromkeys(header, "0")
        values.update({"frame": str(frame), "timestamp": f"{(frame - 1) / 30:.3f}",
                       "confidence": "0.98" if ok else "0", "success": str(int(ok)), "pose_Rx": str(-frame)})
        if face_id:
            values["face_id"] = str(face)
        if ok:
            values.update({c: f"{frame + j / 100:g}" for j, c in enumerate(AU_COLUMNS)})
        if bad and bad[0] == frame and face == 0:
            values[bad[1]] = bad[2]
        return ", ".join(values[c] for c in header)

    for frame in range(1, n_frames + 1):
        lines.append(row(frame, 0))
        if frame in extra_faces:
            lines.append(row(frame, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_labels(path: Path, rows: Sequence[Sequence[Any]], header: Sequence[str] = ("id", "label", "split")
                 ) -> Path:
    """A labels CSV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join([",".join(header), *(",".join(str(c) for c in r) for r in rows)]) + "\n",
                    encoding="utf-8")
    return path


# (id, label, split as written, frames)
OPENFACE_CLIPS = (("clip_a", "happy", "train", 4), ("clip_b", "sad", "train", 3),
                  ("clip_c", "happy", "train", 5), ("clip_d", "sad", "val", 2),
                  ("clip_e", "happy", "valid", 3))


def write_openface(root: Path) -> Path:
    """Five clips in nested OpenFace output folders plus ``labels.csv`` (val/valid -> dev)."""
    for clip, _, _, n in OPENFACE_CLIPS:
        write_openface_csv(root / "processed" / clip[-1] / f"{clip}.csv", n, failed=(2,) if n > 3 else ())
    write_labels(root / "labels.csv", [c[:3] for c in OPENFACE_CLIPS])
    return root


def _openface(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return write_openface(tmp_path / "openface"), {}


def _openface_corrupt(root: Path) -> str:
    write_openface_csv(root / "processed" / "d" / "clip_d.csv", 2, bad=(1, "AU12_r", "-nan(ind)x"))
    return "clip_d.csv"


# --- bring-your-own table --------------------------------------------------------------------------

TABLE_COLUMNS = ["AU01_r", "AU02_r", "mfcc_0", "mfcc_1", "mfcc_2", "txt_0", "txt_1", "note_0"]


def write_feature_csv(path: Path, ids: Sequence[str], *, id_column: str = "id",
                      bad: tuple[str, str, str] | None = None) -> Path:
    """Features: row ``i`` has column ``j`` = ``i + j / 10``; ``bad`` = (id, column, text)."""
    lines = [",".join([id_column, *TABLE_COLUMNS])]
    for i, key in enumerate(ids):
        cells = [f"{i + j / 10:g}" for j in range(len(TABLE_COLUMNS))]
        if bad and bad[0] == key:
            cells[TABLE_COLUMNS.index(bad[1])] = bad[2]
        lines.append(",".join([key, *cells]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


TABLE_LABELS = [("u1", "pos", "train", "d1", "Ann"), ("u2", "neg", "train", "d1", "Bob"),
                ("u3", "neu", "train", "d2", "Ann"), ("u4", "pos", "train", "d2", "Cy"),
                ("u5", "neg", "dev", "d3", "Dee"), ("u6", "pos", "dev", "d3", "Ed")]
TABLE_COLUMNS_PARAM = {"audio": ["mfcc"], "text": ["txt"], "vision": ["AU"]}


def write_table(root: Path) -> Path:
    """``features.csv`` (rows in another order, one extra id) and ``labels.csv`` with dialogue/speaker."""
    ids = ["u6", "u4", "extra", "u1", "u2", "u5", "u3"]
    write_feature_csv(root / "features.csv", ids)
    write_labels(root / "labels.csv", TABLE_LABELS, ("id", "label", "split", "dialogue_id", "speaker"))
    return root


def _table(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    return write_table(tmp_path / "table"), {"columns": TABLE_COLUMNS_PARAM}


def _table_corrupt(root: Path) -> str:
    write_feature_csv(root / "features.csv", ["u6", "u4", "u1", "u2", "u5", "u3"],
                      bad=("u5", "mfcc_1", "n/a"))
    return "features.csv"


FIXTURES: dict[str, dict[str, Any]] = {
    "ravdess": {"build": _ravdess, "corrupt": _ravdess_corrupt, "modalities": ("audio", "vision")},
    "openface": {"build": _openface, "corrupt": _openface_corrupt, "modalities": ("vision",)},
    "table": {"build": _table, "corrupt": _table_corrupt, "modalities": ("audio", "text", "vision")},
}
