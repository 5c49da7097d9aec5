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
