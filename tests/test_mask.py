import io

from PIL import Image

from bot import mask


def pixels(png: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    return image.convert("L")


def test_cells_are_parsed_from_digits_and_words():
    assert mask.parse_cells("1 2 5") == {1, 2, 5}
    assert mask.parse_cells("top left") == {1}
    assert mask.parse_cells("bottom") == {7, 8, 9}
    assert mask.parse_cells("right") == {3, 6, 9}
    assert mask.parse_cells("左上") == {1}
    assert mask.parse_cells("a cat") == set()


def test_answer_splits_cells_from_prompt():
    assert mask.split_answer("1 2 5 a cat in a hat") == ("1 2 5", "a cat in a hat")
    assert mask.split_answer("top left, a hat") == ("top left ,", "a hat")
    assert mask.split_answer("just a prompt") == ("", "just a prompt")


def test_cells_mask_is_white_in_the_cells_and_black_elsewhere():
    image = pixels(mask.cells_mask((300, 600), {1, 5}))
    assert image.size == (300, 600)
    assert image.getpixel((50, 100)) == 255  # cell 1
    assert image.getpixel((150, 300)) == 255  # cell 5 (centre)
    assert image.getpixel((250, 100)) == 0  # cell 3
    assert image.getpixel((50, 500)) == 0  # cell 7
    assert {value for _, value in image.getcolors()} == {0, 255}


def test_shapes_mask_rasterises_rectangles_and_polygons():
    shapes = [
        {"type": "rect", "x": 0.1, "y": 0.1, "w": 0.2, "h": 0.2},
        {"type": "poly", "points": [[0.6, 0.6], [0.9, 0.6], [0.9, 0.9]]},
    ]
    image = pixels(mask.shapes_mask((1000, 500), shapes))
    assert image.getpixel((200, 100)) == 255
    assert image.getpixel((850, 400)) == 255
    assert image.getpixel((700, 430)) == 0  # outside the triangle
    assert image.getpixel((500, 250)) == 0


def test_user_mask_is_normalised_to_size_and_two_levels():
    drawn = Image.new("RGB", (100, 100), "black")
    drawn.paste((240, 240, 240), (0, 0, 50, 50))
    out = io.BytesIO()
    drawn.save(out, "JPEG")
    image = pixels(mask.normalise_mask(out.getvalue(), (400, 400)))
    assert image.size == (400, 400)
    assert image.getpixel((50, 50)) == 255 and image.getpixel((300, 300)) == 0
    assert {value for _, value in image.getcolors()} <= {0, 255}
    assert mask.is_empty(mask.cells_mask((30, 30), set()))


def test_labelled_grid_is_a_jpeg_of_the_image():
    source = io.BytesIO()
    Image.new("RGB", (2048, 1024), "navy").save(source, "PNG")
    grid = Image.open(io.BytesIO(mask.labelled_grid(source.getvalue())))
    assert grid.format == "JPEG" and grid.size == (1024, 512)
