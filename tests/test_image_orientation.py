"""EXIF orientation: a phone photo stored sideways with an Orientation tag is classified the way
every image viewer shows it (upright), from a file and from a PIL image alike; arrays have no
tag and are taken as they are."""
import numpy as np
import pytest
from PIL import Image

import tinymobile
from tinymobile import preprocess

ORIENTATION = 0x0112

#: Stored pixels -> displayed pixels for each EXIF orientation (TIFF 6.0 / Exif 2.3 tag 274), in
#: NumPy terms, independent of Pillow's own table.
DISPLAY = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],                          # mirrored left-right
    3: lambda a: a[::-1, ::-1],                       # rotated 180
    4: lambda a: a[::-1],                             # mirrored top-bottom
    5: lambda a: a.transpose(1, 0, 2),                # mirrored along the main diagonal
    6: lambda a: np.rot90(a, -1),                     # to be rotated 90 degrees clockwise
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),    # mirrored along the anti-diagonal
    8: lambda a: np.rot90(a, 1),                      # to be rotated 90 degrees counter-clockwise
}


@pytest.fixture(scope="module")
def model():
    return tinymobile.build(alpha=0.25, resolution=(40, 32), num_classes=10, threads=1)


def stored_pixels(h=30, w=44):
    """A picture with no symmetry: any flip or rotation changes it."""
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (3 * x + 7 * y) % 256], -1).astype(np.uint8)


def tagged(path, pixels, orientation, **kw):
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    Image.fromarray(pixels).save(path, exif=exif, **kw)
    return path


@pytest.mark.parametrize("orientation", range(1, 9))
@pytest.mark.parametrize("ext", ["png", "tif"])
def test_lossless_files_are_read_upright(tmp_path, orientation, ext):
    a = stored_pixels()
    path = tagged(tmp_path / f"o{orientation}.{ext}", a, orientation)
    want = np.ascontiguousarray(DISPLAY[orientation](a))
    assert np.array_equal(preprocess.read_image(path), want)
    with Image.open(path) as im:
        assert np.array_equal(preprocess.to_rgb_array(im), want)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_a_sideways_jpeg_predicts_as_its_upright_pixels(model, tmp_path, orientation):
    a = stored_pixels(64, 48)
    path = tagged(tmp_path / "phone.jpg", a, orientation, quality=95)
    with Image.open(path) as im:  # the decoded stored pixels, Orientation ignored
        decoded = np.asarray(im.convert("RGB"))
    upright = np.ascontiguousarray(DISPLAY[orientation](decoded))
    assert preprocess.read_image(path).shape == upright.shape
    want = model.predict(upright)
    np.testing.assert_array_equal(model.predict(path), want)
    np.testing.assert_array_equal(model.predict([path, path])[1], want)  # the batch pipeline
    with Image.open(path) as im:
        np.testing.assert_array_equal(model.predict(im), want)
    assert not np.array_equal(model.predict(decoded), want)  # the tag mattered


def test_draft_decoding_of_a_sideways_jpeg_keeps_the_upright_size(tmp_path):
    """--fast-decode's draft is asked for in the stored orientation, so a rotated JPEG is never
    decoded below the (height, width) the model needs once it is upright."""
    a = np.zeros((200, 800, 3), np.uint8)  # stored 800 wide, shown 200 wide x 800 high
    path = tagged(tmp_path / "tall.jpg", a, 6)
    # draft (width, height) = (180, 90): upright the image must stay >= 180 wide and >= 90 high
    got = preprocess.read_image(path, draft=(180, 90))
    assert got.shape[1] >= 180 and got.shape[0] >= 90 and got.shape[0] > got.shape[1], got.shape


@pytest.mark.parametrize("value", [0, 9, 65535])
def test_out_of_range_orientation_values_are_ignored(tmp_path, value):
    a = stored_pixels()
    path = tagged(tmp_path / "odd.png", a, value)
    assert np.array_equal(preprocess.read_image(path), a)


def test_an_exif_transposed_image_is_not_turned_twice(tmp_path):
    from PIL import ImageOps
    a = stored_pixels()
    path = tagged(tmp_path / "o6.png", a, 6)
    with Image.open(path) as im:
        upright = ImageOps.exif_transpose(im)
    assert np.array_equal(preprocess.to_rgb_array(upright), DISPLAY[6](a))


@pytest.mark.parametrize("turn", [
    lambda im: im.transpose(Image.Transpose.ROTATE_270),  # what tag 6 asks for, done by hand
    lambda im: im.rotate(-90, expand=True),
    lambda im: im.convert("RGB").transpose(Image.Transpose.ROTATE_270)])
def test_a_pil_image_turned_by_hand_is_not_turned_again(tmp_path, turn):
    """Pillow's derived images keep the file's Orientation tag: such an image is taken as it
    is (it may already be upright), only an image as Image.open returns it is turned."""
    a = stored_pixels()
    path = tagged(tmp_path / "o6.png", a, 6)
    with Image.open(path) as im:
        turned = turn(im)
        assert turned.getexif().get(ORIENTATION) == 6  # the tag is still there
        assert np.array_equal(preprocess.to_rgb_array(turned), DISPLAY[6](a))
        assert np.array_equal(preprocess.to_rgb_array(im), DISPLAY[6](a))
