"""Training a classifier head end to end (issue #13): Model.train_classifier on float, uint8 and
int8 bases, the head's weights against a NumPy reference, the integer head against the float one,
keep_classes, save / load / add, and the bad inputs."""
import os
import shutil
import warnings

import numpy as np
import pytest

import tinymobile
from conftest import IMAGES, MODELS, fixture_network, require_shared
from tinymobile import heads, training
from tinymobile.heads import TrainingError

DEV = IMAGES / "imagenet-dev"


def dev_images():
    return sorted(str(p) for p in DEV.glob("*.JPEG"))


def three_classes():
    """24 photos in three classes (ImageNet classes 0..70, 160..270 (dogs), 400..510)."""
    files = dev_images()
    paths = files[0:8] + files[16:24] + files[40:48]
    labels = ["critter"] * 8 + ["dog"] * 8 + ["thing"] * 8
    return paths, labels


@pytest.fixture(scope="module")
def uint8_base():
    require_shared()
    from tinymobile.cli import load_model
    return load_model(str(MODELS / "mobilenet_v1_0.25_128_quant.tflite"))


@pytest.fixture(scope="module")
def float_base():
    net, _, _ = fixture_network("0.25", 128)
    return tinymobile.Model(net)


@pytest.fixture(scope="module")
def int8_base(float_base):
    from tinymobile.quantize import quantize_model
    return tinymobile.Model(quantize_model(float_base, dev_images()[::10]))


def unit_reference_imprint(feats, labels, classes, scale):
    feats = np.asarray(feats, np.float64)
    m = np.linalg.norm(feats, axis=1).mean()
    cols = []
    for c in classes:
        u = [f / np.linalg.norm(f) for f, l in zip(feats, labels) if l == c]
        mean = np.mean(u, axis=0)
        cols.append(mean / np.linalg.norm(mean))
    return scale * np.stack(cols, 1) / m


# ---- the head ------------------------------------------------------------------------------

def test_float_imprint_head_weights(float_base):
    paths, labels = three_classes()
    new = float_base.train_classifier(paths, labels, method="imprint")
    assert type(new) is tinymobile.Model and new.labels == ["critter", "dog", "thing"]
    fc = new.network.layers[-1]
    want = unit_reference_imprint(float_base.features(paths), labels, new.labels, heads.DEFAULT_SCALE)
    np.testing.assert_allclose(fc.w, want, rtol=1e-5, atol=1e-7)
    assert not fc.b.any()
    # the trained model's probabilities are the softmax of the head on the base's features
    logits = float_base.features(paths).astype(np.float64) @ fc.w
    p = np.exp(logits - logits.max(1, keepdims=True))
    np.testing.assert_allclose(new.predict(paths), p / p.sum(1, keepdims=True), rtol=1e-4, atol=1e-6)


def test_float_logistic_head_weights(float_base):
    paths, labels = three_classes()
    new = float_base.train_classifier(paths, labels, l2=1e-2)
    feats = float_base.features(paths).astype(np.float64)
    u = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    y = np.array([new.labels.index(l) for l in labels])
    from test_heads import newton_logistic
    # the reference solves the full problem in a basis of the features' span (24 dims)
    q, r = np.linalg.qr(u.T)
    want = q @ newton_logistic(u @ q, y, 3, 1e-2) / np.linalg.norm(feats, axis=1).mean()
    got = new.network.layers[-1].w
    # L-BFGS stops at max |gradient| <= TOL: |W - W*| <= |gradient| / l2 (strong convexity)
    m = np.linalg.norm(feats, axis=1).mean()
    assert np.linalg.norm(got - want) <= np.sqrt(want.size) * heads.TOL / 1e-2 / m
    assert np.linalg.norm(got - want) <= 1e-3 * np.linalg.norm(want)


@pytest.mark.parametrize("method", ["imprint", "logistic"])
@pytest.mark.parametrize("base", ["uint8_base", "int8_base"])
def test_quantized_head_agrees_with_float_head(base, method, request):
    model = request.getfixturevalue(base)
    paths, labels = three_classes()
    new = model.train_classifier(paths, labels, method=method)
    assert isinstance(new, tinymobile.model.Model) and new.dtype == model.dtype
    fc = new.network.layers[-1]
    assert fc.w.dtype == np.dtype(model.dtype) and fc.b.dtype == np.int32
    # the float head fitted on the same (dequantized) features
    state = heads.TrainingState.empty(model.network.feature_size)
    feats = model.features(paths)
    state.add(feats, labels)
    head = heads.fit(state, method)
    float_logits = feats.astype(np.float64) @ head.w + head.b
    float_top1 = float_logits.argmax(1)
    # the whole trained model on the integer kernels
    q = new.forward(new.quantize_input(new.preprocess(paths)))
    assert q.dtype == np.dtype(model.dtype)
    top1 = q.astype(np.int64).argmax(1)
    # agreement wherever the float margin is more than two output steps; below that (a tie in
    # the integer output), the integer top-1 is one of the classes within two steps of the best
    step = new.network.layers[-1].quant.output_scale
    top2 = np.sort(float_logits, axis=1)[:, -2:]
    clear = top2[:, 1] - top2[:, 0] > 2 * step
    assert clear.mean() >= 0.9
    np.testing.assert_array_equal(top1[clear], float_top1[clear])
    near = float_logits[np.arange(len(top1)), top1] >= float_logits.max(1) - 2 * step
    assert near.all()
    # and the engine's integer head gives the NumPy reference's outputs
    ref = training.head_logits(new.network, feats)
    deq = (q.astype(np.float64) - new.network.layers[-1].quant.output_zero_point) * step
    np.testing.assert_allclose(deq, ref, rtol=0, atol=1e-9)


def test_keep_classes(float_base, uint8_base):
    paths, labels = three_classes()
    for base in (float_base, uint8_base):
        new = base.train_classifier(paths, labels, keep_classes=True, method="imprint")
        n = base.num_classes
        assert new.num_classes == n + 3 and new.labels[:n] == base.labels
        assert new.labels[n:] == ["critter", "dog", "thing"]
        old, fc = base.network.layers[-1], new.network.layers[-1]
        if base is float_base:
            np.testing.assert_array_equal(fc.w[:, :n], old.w)
            np.testing.assert_array_equal(fc.b[:n], old.b)
        else:  # integer columns kept bit for bit; the base's probabilities' order unchanged
            np.testing.assert_array_equal(fc.w[:, :n], old.w)
            img = paths[3]
            a = base.predict(img)
            b = new.predict(img)[:n]
            assert np.argmax(a) == np.argmax(b)
    with pytest.raises(TrainingError, match="already one of"):
        float_base.train_classifier(paths, ["0"] + labels[1:], keep_classes=True)


def test_keep_classes_calibration(float_base):
    """New columns = alpha x the imprinted head, bias beta: alpha matches the per-image logit
    spreads, beta puts the median training image's class level with the base's top logit."""
    paths, labels = three_classes()
    new = float_base.train_classifier(paths, labels, keep_classes=True, method="imprint")
    n = float_base.num_classes
    feats = float_base.features(paths).astype(np.float64)
    old = float_base.network.layers[-1]
    base = feats @ old.w + old.b
    w = unit_reference_imprint(feats, labels, ["critter", "dog", "thing"], heads.DEFAULT_SCALE)
    z = feats @ w
    alpha = (base.max(1) - base.mean(1)).mean() / (z.max(1) - z.mean(1)).mean()
    y = np.array([["critter", "dog", "thing"].index(l) for l in labels])
    beta = np.median(base.max(1) - alpha * z[np.arange(24), y])
    fc = new.network.layers[-1]
    np.testing.assert_allclose(fc.w[:, n:], alpha * w, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(fc.b[n:], beta, rtol=1e-4)
    wins = (feats @ fc.w + fc.b).argmax(1) == n + y
    assert 10 <= wins.sum() <= 14  # the median training image is a tie with the base's top class


# ---- files and adding ----------------------------------------------------------------------

def test_save_load_add(uint8_base, tmp_path):
    paths, labels = three_classes()
    first = uint8_base.train_classifier(paths[:16], labels[:16])
    out = tmp_path / "mine.npz"
    first.save(out)
    with pytest.raises(TrainingError, match="exists"):
        first.save(out)
    back = tinymobile.load(out)
    assert back.labels == ["critter", "dog"]
    np.testing.assert_array_equal(back.predict(paths[:4]), first.predict(paths[:4]))
    st = back.training_state
    assert st.method == "logistic" and list(st.counts) == [8, 8] and st.embeddings.shape == (16, 256)
    added = back.train_classifier(paths[16:], labels[16:], add=True)
    assert added.labels == ["critter", "dog", "thing"]
    # the same as training on everything at once (same order)
    whole = uint8_base.train_classifier(paths, labels)
    np.testing.assert_array_equal(added.network.layers[-1].w, whole.network.layers[-1].w)
    np.testing.assert_array_equal(added.network.layers[-1].b, whole.network.layers[-1].b)


def test_no_embeddings(float_base, tmp_path):
    paths, labels = three_classes()
    m = float_base.train_classifier(paths[:16], labels[:16], method="imprint", keep_embeddings=False)
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert "head/sums" in z and "head/embeddings" not in z
    back = tinymobile.load(tmp_path / "m.npz")
    with pytest.raises(TrainingError, match="imprint"):
        back.train_classifier(paths[16:], labels[16:], add=True, method="logistic")
    added = back.train_classifier(paths[16:], labels[16:], add=True)
    whole = float_base.train_classifier(paths, labels, method="imprint")
    np.testing.assert_allclose(added.network.layers[-1].w, whole.network.layers[-1].w, rtol=1e-5)


def test_no_embeddings_with_the_default_logistic_head(float_base, tmp_path):
    """keep_embeddings=False (--no-embeddings) is about what the file keeps: a fresh logistic
    head is fitted on the images' embeddings as with them (it was refused, "only --method
    imprint can add to it", with nothing to add to), and the file has none."""
    paths, labels = three_classes()
    kept = float_base.train_classifier(paths, labels, l2=0.01)
    m = float_base.train_classifier(paths, labels, l2=0.01, keep_embeddings=False)
    np.testing.assert_array_equal(m.network.layers[-1].w, kept.network.layers[-1].w)
    assert m.training_state.embeddings is None and m.training_report.method == "logistic"
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        assert "head/sums" in z and "head/embeddings" not in z
    with pytest.raises(TrainingError, match="only --method imprint can add"):
        tinymobile.load(tmp_path / "m.npz").train_classifier(paths, labels, add=True)


@pytest.mark.parametrize("options, words", [
    ({"l2": float("inf")}, "l2 must be a finite number > 0"),
    ({"method": "imprint", "scale": 1e300}, "not finite"),
    ({"l2": 1e-300, "scale": float("inf")}, "scale must be"),
])
def test_options_that_give_no_classifier_are_refused(float_base, options, words):
    """L2 = inf gave all-zero weights (every image 1/3 on each class) and scale = 1e300 weights
    beyond float32 (NaN probabilities), each saved as a model without a word."""
    paths, labels = three_classes()
    with pytest.raises(TrainingError, match=words):
        float_base.train_classifier(paths, labels, **options)


def test_summary_says_a_given_l2(float_base):
    paths, labels = three_classes()
    summary = float_base.train_classifier(paths, labels, l2=0.01).training_report.summary()
    assert "L2 0.01, given" in summary and "too few" not in summary


def test_validate_reports_held_out_accuracy(uint8_base):
    paths, labels = three_classes()
    new = uint8_base.train_classifier(paths, labels, validate=0.25)
    acc, n = new.training_report.validation
    assert n == 6 and sum(new.training_report.counts.values()) == 18
    held = heads.validation_split(labels, 0.25)
    probs = new.predict([p for p, h in zip(paths, held) if h])
    want = [new.labels.index(l) for l, h in zip(labels, held) if h]
    assert acc == pytest.approx(float(np.mean(probs.argmax(1) == want)))


# ---- bad input -----------------------------------------------------------------------------

def test_unreadable_image_is_skipped(float_base, tmp_path):
    paths, labels = three_classes()
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        new = float_base.train_classifier(paths + [str(bad)], labels + ["dog"])
    assert any("broken.jpg" in str(w.message) for w in caught)
    assert new.training_report.skipped[0][0] == str(bad)
    assert "1 unreadable image skipped" in new.training_report.summary()
    assert new.training_report.counts["dog"] == 8


def test_bad_training_input(float_base, tmp_path):
    paths, labels = three_classes()
    with pytest.raises(TrainingError, match="two classes"):
        float_base.train_classifier(paths[:8], ["dog"] * 8)
    with pytest.raises(TrainingError, match="labels"):
        float_base.train_classifier(paths, labels[:-1])
    with pytest.raises(TrainingError, match="control"):
        float_base.train_classifier(paths, ["a\tb"] + labels[1:])
    with pytest.raises(TrainingError, match="method"):
        float_base.train_classifier(paths, labels, method="svm")
    with pytest.raises(TrainingError, match="must be strings"):
        float_base.train_classifier(paths, [["dog"]] + labels[1:])
    # one string where a list belongs was read letter by letter: "dog" gave classes d, o, g
    with pytest.raises(TrainingError, match="labels.*one class name per image, not one string"):
        float_base.train_classifier(paths[:3], "dog")
    with pytest.raises(TrainingError, match="images.*a list of images, not one path"):
        float_base.train_classifier(str(DEV), labels)
    with pytest.raises(TrainingError, match=r"images: an array of shape \(9, 9, 3\)"):
        float_base.train_classifier(np.zeros((9, 9, 3), np.uint8), ["a"] * 9)
    bad = tmp_path / "x.jpg"
    bad.write_bytes(b"")
    with pytest.raises(TrainingError, match="no readable images"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        float_base.train_classifier(paths[:8] + [str(bad)], ["a"] * 8 + ["b"])
    with pytest.raises(TrainingError, match="no training state"):
        float_base.train_classifier(paths, labels, add=True)


def test_base_without_pooled_features(float_base):
    import copy
    net = copy.copy(float_base.network)
    net.layers = [l for l in net.layers if l.kind != "global_pool"][:-1]
    with pytest.raises(TrainingError, match="no global pool"):
        training.check_base(net)


def test_class_folders(tmp_path):
    for name, files in (("cat", ["a.jpg", "b.png", ".hidden.jpg", "notes.txt"]), ("dog", ["c.JPG"])):
        (tmp_path / name).mkdir()
        for f in files:
            (tmp_path / name / f).write_bytes(b"")
    (tmp_path / ".git").mkdir()
    paths, labels = training.class_folders(str(tmp_path), (".jpg", ".png"))
    assert labels == ["cat", "cat", "dog"]
    assert [os.path.basename(p) for p in paths] == ["a.jpg", "b.png", "c.JPG"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(TrainingError, match="empty.*no image files"):
        training.class_folders(str(tmp_path), (".jpg",))
    shutil.rmtree(tmp_path / "empty")
    (tmp_path / "bad\nname").mkdir()
    with pytest.raises(TrainingError, match="control"):
        training.class_folders(str(tmp_path), (".jpg",))
    with pytest.raises(TrainingError, match="not a directory"):
        training.class_folders(str(tmp_path / "nope"), (".jpg",))


def test_class_folders_include_their_subfolders(tmp_path):
    """cat/2023/x.jpg is a cat (as Keras' image_dataset_from_directory reads it): it was left
    out without a word; hidden subfolders and symlinked folders are not searched."""
    for rel in ["cat/a.jpg", "cat/2023/b.jpg", "cat/2023/deep/c.png", "cat/.thumbs/d.jpg",
                "dog/e.jpg", "elsewhere/f.jpg"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    (tmp_path / "dog" / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    (tmp_path / "only_sub" / "x").mkdir(parents=True)
    (tmp_path / "only_sub" / "x" / "g.jpg").write_bytes(b"")
    paths, labels = training.class_folders(str(tmp_path), (".jpg", ".png"))
    rel = [os.path.relpath(p, tmp_path) for p in paths]
    assert list(zip(labels, rel)) == [
        ("cat", "cat/2023/b.jpg"), ("cat", "cat/2023/deep/c.png"), ("cat", "cat/a.jpg"),
        ("dog", "dog/e.jpg"), ("elsewhere", "elsewhere/f.jpg"), ("only_sub", "only_sub/x/g.jpg")]


def test_damaged_training_state_does_not_break_inference(float_base, tmp_path):
    paths, labels = three_classes()
    m = float_base.train_classifier(paths, labels, method="imprint")
    m.save(tmp_path / "m.npz")
    with np.load(tmp_path / "m.npz", allow_pickle=False) as z:
        arrays = dict(z)
    arrays["head/counts"] = arrays["head/counts"][:2]
    np.savez(tmp_path / "bad.npz", **arrays)
    back = tinymobile.load(tmp_path / "bad.npz")
    np.testing.assert_array_equal(back.predict(paths[:2]), m.predict(paths[:2]))
    with pytest.raises(TrainingError, match="training state"):
        back.train_classifier(paths, labels, add=True)
    arrays["head/classes"] = np.array(["x", "y", "z"])
    arrays["head/counts"] = np.array([8, 8, 8])
    np.savez(tmp_path / "other.npz", **arrays)
    with pytest.raises(TrainingError, match="does not match the model's classifier"):
        tinymobile.load(tmp_path / "other.npz").training_state


def test_too_large_state_is_refused(float_base, tmp_path, monkeypatch):
    import tinymobile.limits
    paths, labels = three_classes()
    m = float_base.train_classifier(paths, labels, method="imprint")
    monkeypatch.setattr(tinymobile.limits, "MAX_ARRAY_BYTES", 1000)
    with pytest.raises(TrainingError, match="--no-embeddings"):
        m.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def test_embed_equals_model_features(uint8_base, tmp_path):
    paths, _ = three_classes()
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"x")
    images = paths[:5] + [str(bad)] + paths[5:20]  # crosses a batch boundary
    feats, owner, failed = training.embed(uint8_base, images, "flip")
    assert failed and failed[0][0] == 5 and "bad.png" in failed[0][1]
    assert owner.tolist() == [i for i in range(len(images)) if i != 5 for _ in range(2)]
    from tinymobile.augment import views
    from tinymobile.preprocess import to_rgb_array
    want = np.concatenate([uint8_base.features(views(to_rgb_array(images[i]), "flip"))
                           for i in range(len(images)) if i != 5])
    np.testing.assert_array_equal(feats, want)


def test_class_folders_named_alike_after_unicode_normalisation(tmp_path):
    """Two folders whose names differ only in Unicode normalisation (NFC / NFD "Äpfel") would be
    two classes printed identically: refused, naming both."""
    for name in ("\u00c4pfel", "A\u0308pfel", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "a.jpg").write_bytes(b"")
    with pytest.raises(TrainingError, match="same class name.*Unicode"):
        training.class_folders(str(tmp_path), (".jpg",))
    (tmp_path / "\u00c4pfel" / "a.jpg").unlink()
    (tmp_path / "\u00c4pfel").rmdir()
    paths, labels = training.class_folders(str(tmp_path), (".jpg",))
    assert labels == ["\u00c4pfel", "b"]  # stored in NFC


def test_labels_named_alike_after_unicode_normalisation_train_one_class(float_base):
    paths, labels = three_classes()
    labels = ["A\u0308" if l == "critter" else l for l in labels]
    labels[0] = "\u00c4"
    m = float_base.train_classifier(paths, labels, method="imprint")
    assert m.labels == ["\u00c4", "dog", "thing"]
    assert m.training_report.counts["\u00c4"] == 8
