import io

from PIL import Image

from pressroom_illustrator.cover import HEIGHT, WIDTH, render_cover


def test_cover_is_a_link_preview_png_and_deterministic():
    png = render_cover("The future of remote work", seed_text="job-1:1")
    image = Image.open(io.BytesIO(png))
    assert image.format == "PNG"
    assert image.size == (WIDTH, HEIGHT) == (1200, 630)
    assert render_cover("The future of remote work", seed_text="job-1:1") == png
    assert render_cover("The future of remote work", seed_text="job-2:1") != png


def test_square_and_long_titles_stay_inside_the_card():
    from pressroom_illustrator.cover import MAX_LINES, SQUARE, _fit_title

    png = render_cover("A title", seed_text="s", width=SQUARE, height=SQUARE)
    assert Image.open(io.BytesIO(png)).size == (1080, 1080)
    font, lines = _fit_title("word " * 200, 960, 1080)
    assert len(lines) == MAX_LINES and lines[-1].endswith("…")
    assert all(font.getlength(line) <= 960 for line in lines)
    font, lines = _fit_title("Pneumonoultramicroscopicsilicovolcanoconiosis" * 3, 400, 630)
    assert all(font.getlength(line) <= 400 for line in lines)
