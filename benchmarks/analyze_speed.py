"""Speed and memory of ``scenesense analyze`` on generated talking media.

The script generates, in a temporary folder:

- a talking clip of ``--minutes`` (default 10): espeak-ng sentences in two speaking styles (calm:
  slow, low and soft; excited: fast, high and loud) with pauses of 0.4-1.6 s between them, as an
  MP4 whose video is a moving crop of scikit-image's astronaut photograph (a face), 256x256 at
  10 fps (H.264 + AAC, muxed with PyAV);
- a recording of ``--hour-minutes`` (default 60): the clip's audio repeated, as a 16-bit WAV
  written block by block;
- unless ``--run`` names a finished run, a small text+audio run: 64 espeak-ng utterances in the
  two styles (labels ``calm``/``excited``), featurised by the real extractors (eGeMAPSv02
  functionals of the audio, MiniLM sentence vectors of the text) and trained for a few epochs.

Each recording is then analysed by ``scenesense analyze MEDIA --run RUN --json --no-progress``
in a child process with ``OMP_NUM_THREADS`` set to ``--threads``: Silero VAD segments, Whisper
tiny.en transcripts (the run reads text), eGeMAPS + MiniLM features, the model. The child reports
its own peak RSS (``VmHWM``). Printed: the seconds per stage (decode, VAD, transcription,
features, model, write), the real-time ratio (media seconds / seconds of ``analyze_media``, and
/ wall seconds of the whole command including start-up), the CPU seconds of the command (on a
machine shared with other work, wall time exceeds CPU time / threads), segments found, and the
peak RSS of each run. Exit 1 when the clip is analysed slower than ``--min-realtime`` (default 5x real time)
or the hour's peak RSS reaches ``--limit-mb`` (default 1536, i.e. 1.5 GB).

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/analyze_speed.py
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/analyze_speed.py --minutes 2 --hour-minutes 10  # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
import wave
from pathlib import Path

import numpy as np

from cli_child import run_cli

ESPEAK_RATE = 22050  # espeak-ng's output rate
FPS = 10
SIZE = 256
STYLES = {"calm": ("-s", "130", "-p", "30", "-a", "60"), "excited": ("-s", "190", "-p", "75", "-a", "180")}
SENTENCES = (
    "I really did not expect to see you here today.", "We should talk about what happened last week.",
    "The train was late again this morning.", "Can you believe how quickly the year went by?",
    "I think we need to change our plans for the weekend.", "She told me the whole story over dinner.",
    "Please let me know when you have finished reading it.", "That was the best concert I have ever been to.",
    "Nobody answered the phone when I called the office.", "We won the game in the very last minute.",
    "The weather is supposed to get better tomorrow.", "I left my keys in the car again.",
    "They are moving to a new house next month.", "This coffee tastes much better than yesterday.",
    "He finally got the job he always wanted.", "Let us meet at the station at six.",
)


def speak(text: str, style: str) -> np.ndarray:
    """``text`` said by espeak-ng in ``style``: float32 ``[S]`` at `ESPEAK_RATE`."""
    done = subprocess.run(["espeak-ng", *STYLES[style], "--stdout", text], check=True, capture_output=True)
    data = done.stdout
    at = data.find(b"data") + 8  # the RIFF header espeak writes to a pipe has no usable sizes
    return np.frombuffer(data[at:at + (len(data) - at) // 2 * 2], "<i2").astype(np.float32) / 32768


def write_wav(path: Path, samples: np.ndarray, rate: int = ESPEAK_RATE) -> Path:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.round(np.clip(samples, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())
    return path


def build_run(root: Path, seed: int = 0) -> Path:
    """Train the small text+audio run of the module docstring under ``root``; its run directory."""
    from scenesense import api
    from scenesense.config import build_config
    from scenesense.data.labels import LabelSpace
    from scenesense.data.store import FeatureSpec, StoreWriter
    from scenesense.extraction import EXTRACTORS

    audio, text = EXTRACTORS.create("egemaps"), EXTRACTORS.create("minilm")
    specs = {"audio": FeatureSpec("audio", "vector", 88, provenance=audio.provenance()),
             "text": FeatureSpec("text", "vector", 384, provenance=text.provenance())}
    rng = np.random.default_rng(seed)
    (root / "clips").mkdir(parents=True)
    for split, n in (("train", 48), ("dev", 16)):
        labels = [i % 2 for i in range(n)]  # 0 calm, 1 excited
        sentences = [SENTENCES[int(rng.integers(len(SENTENCES)))] for _ in range(n)]
        clips = [write_wav(root / "clips" / f"{split}{i}.wav", speak(s, ("calm", "excited")[y]))
                 for i, (s, y) in enumerate(zip(sentences, labels))]
        functionals = [r["functionals"] for r in audio.extract_batch([str(p) for p in clips])]
        with StoreWriter(root / "store" / f"{split}.h5", label_space=LabelSpace(("calm", "excited")),
                         features=specs, source={"dataset": "analyze_speed_benchmark"}) as w:
            w.append([f"{split}{i}" for i in range(n)], labels,
                     {"audio": functionals, "text": list(text.extract(sentences).sentence)})
    cfg = build_config({
        "name": "analyze_speed", "modalities": ["audio", "text"],
        "data": {"dataset": "store", "root": str(root / "store")},
        "model": {"standardize": True, "out_dim": 64, "head_hidden_dim": 64},
        "trainer": {"epochs": 15, "batch_size": 16, "lr": 1e-3, "progress": False, "seed": seed}})
    return api.train(cfg, root / "run").run_dir


def _frames(seconds: float) -> np.ndarray:
    """Video frames of the astronaut, a 400x400 crop moving slowly, resized to ``SIZE``: ``[H, W, 3]``."""
    from PIL import Image
    from skimage import data

    photo = data.astronaut()
    for k in range(round(seconds * FPS)):
        t = k / FPS
        x, y = int(56 + 40 * np.sin(t * 0.9)), int(40 + 20 * np.sin(t * 0.6))
        crop = Image.fromarray(photo[y:y + 400, x:x + 400]).resize((SIZE, SIZE), Image.Resampling.BILINEAR)
        yield np.asarray(crop)


def write_talk(folder: Path, minutes: float, seed: int = 1) -> tuple[Path, Path, int]:
    """The talking clip as a WAV and an MP4 (see the module docstring); also the number of sentences."""
    import av

    rng = np.random.default_rng(seed)
    wav = folder / "talk.wav"
    total = round(minutes * 60 * ESPEAK_RATE)
    said, n = 0, 0
    with wave.open(str(wav), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(ESPEAK_RATE)
        while said < total:
            style = ("calm", "excited")[int(rng.integers(2))]
            part = np.concatenate([np.zeros(round(rng.uniform(0.4, 1.6) * ESPEAK_RATE), np.float32),
                                   speak(SENTENCES[int(rng.integers(len(SENTENCES)))], style)])[:total - said]
            w.writeframes(np.round(np.clip(part, -1, 32767 / 32768) * 32768).astype("<i2").tobytes())
            said += part.size
            n += 1
    mp4 = folder / "talk.mp4"
    with wave.open(str(wav), "rb") as w, av.open(str(mp4), "w") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width = video.height = SIZE
        video.pix_fmt = "yuv420p"
        video.options = {"preset": "veryfast", "crf": "28"}
        sound = container.add_stream("aac", rate=ESPEAK_RATE)
        sound.layout = "mono"
        step, written = 1024, 0
        for k, image in enumerate(_frames(minutes * 60)):  # one frame, then the audio up to its time
            container.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
            while written < (k + 1) / FPS * ESPEAK_RATE:
                block = w.readframes(step)
                if not block:
                    break
                samples = np.frombuffer(block, "<i2").astype(np.float32)[None] / 32768
                frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
                frame.sample_rate, frame.pts = ESPEAK_RATE, written
                container.mux(sound.encode(frame))
                written += samples.shape[1]
        container.mux(video.encode())
        container.mux(sound.encode())
    return wav, mp4, n


def write_hour(wav: Path, dest: Path, minutes: float) -> Path:
    """``wav`` repeated up to ``minutes``, written block by block."""
    with wave.open(str(wav), "rb") as source, wave.open(str(dest), "wb") as out:
        out.setparams(source.getparams())
        left = round(minutes * 60 * source.getframerate())
        while left > 0:
            source.rewind()
            while left > 0 and (block := source.readframes(min(1 << 16, left))):
                out.writeframes(block)
                left -= len(block) // 2
    return dest


def analyze(run: Path, media: Path, out: Path, threads: int, extra: list[str]) -> dict:
    """``scenesense analyze`` in a child process: its JSON, wall seconds and peak RSS (MB)."""
    child = run_cli(["analyze", str(media), "--run", str(run), "--output-dir", str(out), "--json",
                     "--no-progress", *extra], threads, capture_stdout=True)
    return {"analysis": json.loads(child.stdout), "wall": child.wall, "cpu": child.cpu,
            "peak_rss_mb": child.peak_rss_mb}


def report(name: str, result: dict) -> float:
    """Print one analysed recording's line; its real-time ratio (media s / analyze_media s)."""
    a = result["analysis"]
    stages = a["stage_seconds"]
    ratio = a["duration"] / stages["total"]
    words = sum(len(s["transcript"].split()) for s in a["segments"])
    print(f"{name}: {a['duration'] / 60:.1f} min of media, {a['n_segments']} segments ({a['n_ok']} predicted, "
          f"{words} words transcribed); analyze_media {stages['total']:.1f} s = {ratio:.1f}x real time "
          f"({a['duration'] / result['wall']:.1f}x with start-up, {result['wall']:.1f} s wall, "
          f"{result['cpu']:.1f} s CPU); peak RSS {result['peak_rss_mb']:.0f} MB", flush=True)
    print("    stages: " + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items() if k != "total"), flush=True)
    return ratio


def main() -> None:
    """Generate the media, build (or take) the run, analyse both recordings, print and check."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", help="a finished text+audio run (default: train the small one)")
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the talking clip (%(default)s)")
    parser.add_argument("--hour-minutes", type=float, default=60.0,
                        help="length of the long recording for the memory check (%(default)s)")
    parser.add_argument("--hour-transcribe", choices=("auto", "never"), default="auto",
                        help="--transcribe of the long recording (%(default)s)")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")),
                        help="OMP_NUM_THREADS of the analyze processes (default: $OMP_NUM_THREADS, else 2)")
    parser.add_argument("--min-realtime", type=float, default=5.0, help="slowest accepted (%(default)sx)")
    parser.add_argument("--limit-mb", type=float, default=1536.0, help="peak RSS limit (%(default)s MB)")
    parser.add_argument("--keep", help="keep the files in this folder instead of a temporary one")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is needed to generate speech (apt-get install espeak-ng)")

    with tempfile.TemporaryDirectory(prefix="scenesense-analyze-speed-") as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        run = Path(args.run) if args.run else build_run(folder / "train")
        print(f"run: {run} ({'given' if args.run else f'trained in {time.perf_counter() - start:.0f} s'})",
              flush=True)
        start = time.perf_counter()
        wav, mp4, sentences = write_talk(folder, args.minutes)
        hour = write_hour(wav, folder / "hour.wav", args.hour_minutes)
        print(f"media written in {time.perf_counter() - start:.0f} s: {mp4.name} ({sentences} sentences, "
              f"{mp4.stat().st_size / 2**20:.1f} MB), {hour.name} ({hour.stat().st_size / 2**20:.0f} MB)",
              flush=True)
        clip = analyze(run, mp4, folder / "talk.analysis", args.threads, [])
        ratio = report("clip", clip)
        long = analyze(run, hour, folder / "hour.analysis", args.threads, ["--transcribe", args.hour_transcribe])
        report("hour", long)
    fast = ratio >= args.min_realtime
    small = long["peak_rss_mb"] < args.limit_mb
    print(f"OMP_NUM_THREADS={args.threads}: clip {ratio:.1f}x real time {'>=' if fast else '<'} "
          f"{args.min_realtime:g}x: {'PASS' if fast else 'FAIL'}; hour peak RSS {long['peak_rss_mb']:.0f} MB "
          f"{'<' if small else '>='} {args.limit_mb:.0f} MB: {'PASS' if small else 'FAIL'}")
    print(json.dumps({"clip": {k: v for k, v in clip.items() if k != "analysis"} | {
        "stage_seconds": clip["analysis"]["stage_seconds"], "duration": clip["analysis"]["duration"],
        "segments": clip["analysis"]["n_segments"]}, "hour": {k: v for k, v in long.items() if k != "analysis"} | {
        "stage_seconds": long["analysis"]["stage_seconds"], "duration": long["analysis"]["duration"],
        "segments": long["analysis"]["n_segments"]}, "threads": args.threads}))
    if not (fast and small):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
