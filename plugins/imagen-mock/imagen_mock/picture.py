"""Procedural picture of imagen's mock backend.

The picture is a small stylised landscape (sky gradient, sun, soft bokeh,
hills / mountains / sea) in a harmonious palette derived from the seed and
the prompt, with the prompt set as a caption on a translucent panel and a
small footer.  Everything is a pure function of ``(prompt, seed, width,
height)``: the same inputs always produce byte-identical PNG bytes.

Speed: the scenery is drawn on a small "work" canvas (at most
``_WORK_MAX`` pixels on its long side) and upscaled once with a bicubic
filter, which also gives the soft, slightly dreamy look.  Only the text is
drawn at full resolution, and only the panel region is touched for that.
"""

from __future__ import annotations

import colorsys
import functools
import hashlib
import io
import itertools
import math
import random
import unicodedata
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageStat

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["render", "render_png"]

RGB = tuple[int, int, int]
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont

_WORK_MAX = 512  # long side of the canvas the scenery is drawn on
_MAX_LINES = 5  # prompt lines shown before truncating with an ellipsis
_PREFERRED_LINES = 4  # shrink the font rather than use more lines than this
_MIN_FONT = 8  # smallest caption size worth drawing, in pixels
_MAX_PROMPT_CHARS = 20_000  # more than fits in _MAX_LINES lines at any size
_ELLIPSIS = "\u2026"

# Fallbacks for characters the bundled font (a subset of Aileron) lacks.
_TRANSLIT = {
    "\u00d7": "x",  # multiplication sign
    "\u00c6": "AE",
    "\u00e6": "ae",
    "\u0152": "OE",
    "\u0153": "oe",
    "\u00df": "ss",
    "\u00d8": "O",
    "\u00f8": "o",
    "\u0141": "L",
    "\u0142": "l",
    "\u0110": "D",
    "\u0111": "d",
    "\u00de": "Th",
    "\u00fe": "th",
    "\u00d0": "D",
    "\u00f0": "d",
    "\u0131": "i",
    "\u2013": "-",
    "\u2014": "-",
    "\u2212": "-",
    "\u2022": "\u00b7",
    "\u201e": "\u201c",
    "\u201a": "\u2018",
    "\u00a0": " ",
}


# --------------------------------------------------------------------------
# public API


def render(prompt: str, seed: int, width: int, height: int) -> Image.Image:
    """Return an RGB picture derived only from (prompt, seed, width, height)."""
    if width < 1 or height < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    rng = random.Random(_mix_seed(prompt, seed))
    hints = _Hints(prompt)
    palette = _Palette(rng, hints.mood)

    scale = min(1.0, _WORK_MAX / max(width, height))
    ww = max(1, round(width * scale))
    wh = max(1, round(height * scale))
    img = _scenery(rng, palette, hints.scene, ww, wh)
    if (ww, wh) != (width, height):
        img = img.resize((width, height), Image.Resampling.BICUBIC)

    _draw_texts(img, prompt, seed, palette)
    return img


def render_png(prompt: str, seed: int, width: int, height: int) -> bytes:
    """render(...) encoded as PNG bytes (no timestamps or other varying metadata)."""
    img = render(prompt, seed, width, height)
    img.info.clear()
    buf = io.BytesIO()
    # Named, not format="PNG": Pillow then imports only its PNG plugin, where an
    # explicit format makes it import BMP, GIF, JPEG and PPM too (~7 ms a start).
    buf.name = "image.png"
    img.save(buf)
    return buf.getvalue()


# --------------------------------------------------------------------------
# randomness, prompt hints and colour


def _mix_seed(prompt: str, seed: int) -> int:
    """A stable 256-bit seed from the user's seed and the prompt text."""
    h = hashlib.sha256(b"imagen-mock/picture/v1\0")
    h.update(str(int(seed)).encode("ascii"))
    h.update(b"\0")
    h.update(prompt.encode("utf-8", "surrogatepass"))
    return int.from_bytes(h.digest(), "big")


_MOOD_WORDS = {
    "night": ("night", "midnight", "moon", "moonlit", "star", "stars", "starry", "galaxy"),
    "dusk": ("dusk", "sunset", "evening", "twilight", "dawn", "sunrise", "golden", "dusky"),
    "day": ("day", "noon", "sunny", "morning", "daylight", "summer", "bright"),
    "pastel": ("pastel", "soft", "dream", "dreamy", "gentle", "cozy", "cute", "spring"),
}
_SCENE_WORDS = {
    "sea": (
        "sea",
        "ocean",
        "beach",
        "lighthouse",
        "harbor",
        "harbour",
        "lake",
        "boat",
        "ship",
        "wave",
        "waves",
        "island",
        "coast",
        "shore",
        "bay",
        "sail",
        "river",
        "pier",
    ),
    "mountains": (
        "mountain",
        "mountains",
        "peak",
        "peaks",
        "alps",
        "volcano",
        "cliff",
        "cliffs",
        "snow",
        "summit",
        "glacier",
        "canyon",
        "ridge",
    ),
    "hills": ("hill", "hills", "meadow", "field", "fields", "valley", "farm", "countryside"),
}


class _Hints:
    """Mood and scene nudged by words in the prompt ("at dusk", "lighthouse", ...)."""

    def __init__(self, prompt: str) -> None:
        words = {w.strip(".,;:!?\"'()[]") for w in prompt.lower().split()}
        self.mood = next((k for k, v in _MOOD_WORDS.items() if words.intersection(v)), None)
        self.scene = next((k for k, v in _SCENE_WORDS.items() if words.intersection(v)), None)


def _hls(h: float, lum: float, sat: float) -> RGB:
    r, g, b = colorsys.hls_to_rgb(h % 1.0, _clamp(lum), _clamp(sat))
    return (round(r * 255), round(g * 255), round(b * 255))


def _clamp(v: float, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo if v < lo else hi if v > hi else v


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return (
        round(a[0] + (b[0] - a[0]) * t),
        round(a[1] + (b[1] - a[1]) * t),
        round(a[2] + (b[2] - a[2]) * t),
    )


def _luma(c: RGB) -> float:
    return (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255.0


def _skip_band(u: float, lo: float, hi: float) -> float:
    """Map u in [0, 1) to a hue outside [lo, hi) (muddy / sickly hues)."""
    h = u * (1.0 - (hi - lo))
    return h + (hi - lo) if h >= lo else h


# Mood presets: sky lightness (top, middle, horizon), sky saturation, land
# lightness (far, near) and saturation, sun lightness and saturation.
_MOODS = {
    "dusk": ((0.22, 0.46, 0.72), (0.55, 0.62, 0.85), (0.42, 0.14), 0.42, (0.9, 0.95)),
    "day": ((0.48, 0.64, 0.84), (0.6, 0.55, 0.6), (0.58, 0.28), 0.4, (0.96, 0.9)),
    "pastel": ((0.70, 0.80, 0.90), (0.45, 0.5, 0.6), (0.68, 0.42), 0.33, (0.97, 0.8)),
    "night": ((0.08, 0.18, 0.36), (0.6, 0.5, 0.5), (0.22, 0.05), 0.35, (0.93, 0.35)),
}


class _Palette:
    """Seed-derived colour scheme: an analogous hue walk for the sky and a
    related (analogous, complementary or triadic) hue for the land."""

    def __init__(self, rng: random.Random, mood: str | None) -> None:
        u = rng.random
        picked = rng.choice(("dusk", "dusk", "day", "pastel", "night"))
        self.mood = mood or picked
        # No olive / green skies at the top; dark tops also avoid brown (orange).
        dark_top = self.mood in ("dusk", "night")
        hue = _skip_band(u(), 0.06 if dark_top else 0.17, 0.44)
        step = (0.05 + 0.08 * u()) * rng.choice((-1, 1))
        if 0.2 < (hue + 2 * step) % 1.0 < 0.42:  # keep the horizon glow out of green
            step = -step
        land_shift = rng.choice((0.06, -0.06, 0.5, 1 / 3, -1 / 3))
        land_hue = (hue + land_shift + 0.04 * (u() - 0.5)) % 1.0
        if 0.07 < land_hue < 0.22:  # brown / olive land looks muddy: push it away
            land_hue = 0.05 if land_hue < 0.145 else 0.27
        sky_l, sky_s, land_l, land_s, sun = _MOODS[self.mood]
        self.sky = [_hls(hue + i * step, sky_l[i], sky_s[i]) for i in range(3)]
        sun_hue = hue + 0.5 if self.mood == "night" else hue + 2.6 * step
        self.sun = _hls(sun_hue, sun[0], sun[1])
        self.land_hue = land_hue
        self.land_lums = land_l
        self.land_sat = land_s
        self.accent = _hls(hue + 0.5 + 0.1 * (u() - 0.5), 0.75, 0.7)
        self.text = _hls(hue, 0.97, 0.35)
        self.shade = _hls(hue, 0.09, 0.45)

    def land(self, t: float) -> RGB:
        """Land colour at depth ``t`` (0 = far, 1 = near), hazed toward the horizon."""
        far, near = self.land_lums
        base = _hls(self.land_hue + 0.03 * t, far + (near - far) * t, self.land_sat)
        return _mix(self.sky[2], base, 0.45 + 0.55 * t)


# --------------------------------------------------------------------------
# scenery (drawn on the small work canvas)


def _scenery(rng: random.Random, pal: _Palette, scene: str | None, w: int, h: int) -> Image.Image:
    u = rng.random
    kind = scene or rng.choice(("hills", "hills", "mountains", "sea"))
    horizon = h * (0.56 + 0.14 * u())
    size = math.sqrt(w * h)

    img = _vertical_gradient(
        w, h, [(0.0, pal.sky[0]), (0.4 + 0.2 * u(), pal.sky[1]), (horizon / h, pal.sky[2])]
    )
    if pal.mood in ("night", "dusk"):
        _stars(rng, img, horizon * (0.75 if pal.mood == "night" else 0.4), pal)

    # Sun (or moon) with a wide glow; drawn before the land so it can set.
    sun_r = min(size * (0.045 + 0.04 * u()), h * 0.3)
    if u() < 0.75:  # setting / rising
        sun_x = w * (0.12 + 0.76 * u())
        sun_y = horizon - sun_r * (0.1 + 1.1 * u())
    else:  # high, toward a corner
        side = u()
        sun_x = w * (0.08 + 0.2 * side if side < 0.5 else 0.72 + 0.2 * side)
        sun_y = h * (0.1 + 0.08 * u()) + sun_r * 0.5
    _glow(img, sun_x, sun_y, sun_r * (5.0 + 3.0 * u()), pal.sun, 0.5)
    _glow(img, sun_x, horizon, w * 0.9, _mix(pal.sky[2], pal.sun, 0.5), 0.35)
    _bokeh(rng, img, horizon, pal)
    _blob(img, sun_x, sun_y, sun_r, pal.sun, 1.0, _disc(0.03))

    if kind == "sea":
        _sea(rng, img, horizon, sun_x, sun_r, pal)
    else:
        _land(rng, img, horizon, kind, pal)
    _vignette(img)
    return img


def _vertical_gradient(w: int, h: int, stops: Sequence[tuple[float, RGB]]) -> Image.Image:
    """Smooth multi-stop vertical gradient (one row computed per pixel row)."""
    data = bytearray()
    for y in range(h):
        data += bytes(_sample_stops(stops, (y + 0.5) / h))
    return Image.frombytes("RGB", (1, h), bytes(data)).resize((w, h), Image.Resampling.NEAREST)


def _sample_stops(stops: Sequence[tuple[float, RGB]], t: float) -> RGB:
    if t <= stops[0][0]:
        return stops[0][1]
    for (t0, c0), (t1, c1) in itertools.pairwise(stops):
        if t <= t1:
            f = (t - t0) / (t1 - t0) if t1 > t0 else 1.0
            return _mix(c0, c1, f * f * (3 - 2 * f))  # smoothstep
    return stops[-1][1]


_RADIAL_EDGE = 181.0  # radial_gradient() value at distance 128 (its inscribed circle)


@functools.cache
def _falloff(power: float) -> Image.Image:
    """256x256 radial mask: 255 in the centre, fading to 0 at the inscribed circle."""
    lut = [round(255 * max(0.0, 1.0 - v / _RADIAL_EDGE) ** power) for v in range(256)]
    return Image.radial_gradient("L").point(lut)


@functools.cache
def _disc(soft: float) -> Image.Image:
    """256x256 disc mask filling the square, its edge softened over ``soft`` of the radius."""
    lut = [round(255 * _clamp((1.0 - v / _RADIAL_EDGE) / soft)) for v in range(256)]
    return Image.radial_gradient("L").point(lut)


def _paste_mask(img: Image.Image, color: RGB, mask: Image.Image, xy: tuple[int, int]) -> None:
    """Blend ``color`` into ``img`` through ``mask`` placed at ``xy`` (may be off-canvas)."""
    img.paste(color, (xy[0], xy[1], xy[0] + mask.width, xy[1] + mask.height), mask)


def _blob(
    img: Image.Image, cx: float, cy: float, r: float, color: RGB, alpha: float, mask: Image.Image
) -> None:
    """Blend a radial ``mask`` scaled to radius ``r`` and centred at (cx, cy) into ``img``."""
    _blob_xy(img, cx, cy, 2 * r, 2 * r, color, alpha, mask)


def _blob_xy(
    img: Image.Image,
    cx: float,
    cy: float,
    dw: float,
    dh: float,
    color: RGB,
    alpha: float,
    mask: Image.Image,
) -> None:
    """Blend ``mask`` stretched to ``dw`` x ``dh`` and centred at (cx, cy) into ``img``."""
    size = (max(1, round(dw)), max(1, round(dh)))
    m = mask.resize(size, Image.Resampling.BILINEAR)
    if alpha < 1.0:
        m = m.point([round(v * alpha) for v in range(256)])
    _paste_mask(img, color, m, (round(cx - size[0] / 2), round(cy - size[1] / 2)))


def _glow(img: Image.Image, cx: float, cy: float, r: float, color: RGB, strength: float) -> None:
    _blob(img, cx, cy, r, color, strength, _falloff(2.2))


def _stars(rng: random.Random, img: Image.Image, bottom: float, pal: _Palette) -> None:
    w, _ = img.size
    draw = ImageDraw.Draw(img)
    for _ in range(int(w * bottom / 900) + 3):
        x, y = rng.random() * w, rng.random() * bottom
        depth = 1.0 - y / max(bottom, 1.0)
        c = _mix(pal.sky[0], (255, 255, 245), (0.35 + 0.6 * rng.random()) * depth)
        draw.point((x, y), fill=c)


def _bokeh(rng: random.Random, img: Image.Image, horizon: float, pal: _Palette) -> None:
    """A few large, soft, translucent discs floating in the sky."""
    w, h = img.size
    size = math.sqrt(w * h)
    for i in range(rng.randint(3, 7)):
        r = size * (0.03 + 0.09 * rng.random())
        x = w * rng.random()
        y = horizon * (0.1 + 0.8 * rng.random())
        base = pal.accent if i % 2 else pal.sun
        c = _mix(base, (255, 255, 255), 0.3 * rng.random())
        _blob(img, x, y, r, c, 0.07 + 0.12 * rng.random(), _disc(0.12))


def _fill(img: Image.Image, pts: Sequence[tuple[float, float]], color: RGB, ss: int = 4) -> None:
    """Antialiased polygon fill: the mask is drawn ``ss`` times larger, then reduced."""
    w, h = img.size
    x0 = max(0, math.floor(min(p[0] for p in pts)))
    y0 = max(0, math.floor(min(p[1] for p in pts)))
    x1 = min(w, math.ceil(max(p[0] for p in pts)))
    y1 = min(h, math.ceil(max(p[1] for p in pts)))
    if x1 <= x0 or y1 <= y0:
        return
    mask = Image.new("L", ((x1 - x0) * ss, (y1 - y0) * ss), 0)
    ImageDraw.Draw(mask).polygon([((x - x0) * ss, (y - y0) * ss) for x, y in pts], fill=255)
    img.paste(color, (x0, y0, x1, y1), mask.reduce(ss))


def _ridge(rng: random.Random, n: int, kind: str) -> list[float]:
    """Silhouette heights (roughly 0..1) at ``n + 1`` evenly spaced x positions."""
    u = rng.random
    if kind == "mountains":
        peaks = [(u(), 0.45 + 0.55 * u(), 1.6 + 2.2 * u()) for _ in range(rng.randint(3, 6))]
        detail = [(0.03 * u(), 6 + 10 * u(), 6.3 * u()) for _ in range(2)]
        out = []
        for i in range(n + 1):
            x = i / n
            v = max(p - s * abs(x - px) for px, p, s in peaks)
            v += sum(a * math.sin(2 * math.pi * f * x + ph) for a, f, ph in detail)
            out.append(max(v, 0.12))
        return out
    waves = [(0.5 * (0.6 + 0.4 * u()) / k, k * (0.6 + 0.8 * u()), 6.3 * u()) for k in (1, 2, 4)]
    return [
        0.5 + sum(a * math.sin(2 * math.pi * f * i / n + ph) for a, f, ph in waves)
        for i in range(n + 1)
    ]


def _land(rng: random.Random, img: Image.Image, horizon: float, kind: str, pal: _Palette) -> None:
    w, h = img.size
    layers = rng.randint(3, 4)
    gap = (h - horizon) / (layers + 0.4)
    n = max(2, w // 4)
    for i in range(layers):
        t = i / (layers - 1)
        shape = kind if i < 2 else "hills"
        amp = gap * (2.6 if shape == "mountains" else 1.3) * (1.0 - 0.3 * t)
        base = horizon + gap * (i + 0.35) + amp * 0.35
        ys = [base - amp * v for v in _ridge(rng, n, shape)]
        pts = [(-1.0, h + 1.0)] + [(w * j / n, y) for j, y in enumerate(ys)] + [(w + 1.0, h + 1.0)]
        _fill(img, pts, pal.land(t))


def _sea(
    rng: random.Random, img: Image.Image, horizon: float, sun_x: float, sun_r: float, pal: _Palette
) -> None:
    w, h = img.size
    u = rng.random
    top = math.floor(horizon)
    depth = max(1, h - top)
    # The water mirrors the sky, darker and a little toward the land hue.
    far = _mix(_mix(pal.sky[2], pal.sky[1], 0.55), pal.land(0.3), 0.25)
    near = _mix(_mix(pal.sky[0], pal.land(1.0), 0.5), (0, 0, 0), 0.25)
    water = _vertical_gradient(w, depth, [(0.0, far), (1.0, near)])

    # Reflection: a soft column of light, then glittering dashes on top of it.
    col_w = sun_r * 4.0
    _blob_xy(water, sun_x, 0, col_w, depth * 1.6, pal.sun, 0.35, _falloff(1.5))
    layer = Image.new("L", (w, depth), 0)
    draw = ImageDraw.Draw(layer)
    y = 0.5
    while y < depth:
        t = y / depth
        for _ in range(2):
            half = sun_r * (0.15 + 0.9 * u()) * (0.6 + 1.6 * t)
            x = sun_x + sun_r * (u() - 0.5) * (1.2 + 3.5 * t)
            draw.line(
                (x - half, y, x + half, y), fill=round(255 * (0.25 + 0.6 * u()) * (1 - 0.6 * t))
            )
        y += 1.5 + 4.0 * t * u()
    layer = layer.filter(ImageFilter.GaussianBlur(0.7))
    water.paste(pal.sun, (0, 0), layer)
    img.paste(water, (0, top))

    # A distant headland off one side.
    hw = w * (0.18 + 0.2 * u())
    hh = depth * (0.06 + 0.07 * u()) + 1.0
    left = u() < 0.5
    pts = [(-1.0 if left else w - hw, top + 1.0)]
    for j in range(25):
        f = j / 24
        g = f if left else 1.0 - f  # 0 at the screen edge, 1 at the tip
        prof = 1.0 if g < 0.3 else 0.5 * (1.0 + math.cos(math.pi * (g - 0.3) / 0.7))
        prof *= 1.0 + 0.08 * math.sin(9.0 * g + 6.3 * (hw % 1.0))
        x = hw * f if left else w - hw + hw * f
        pts.append((x, top - hh * prof))
    pts.append((hw if left else w + 1.0, top + 1.0))
    _fill(img, pts, pal.land(0.55))


def _vignette(img: Image.Image) -> None:
    w, h = img.size
    lut = [round(80 * _clamp((v - 110) / (255 - 110)) ** 1.5) for v in range(256)]
    mask = Image.radial_gradient("L").point(lut).resize((w, h), Image.Resampling.BILINEAR)
    img.paste((0, 0, 0), (0, 0, w, h), mask)


# --------------------------------------------------------------------------
# text


@functools.cache
def _font(size: int) -> Font:
    try:
        return ImageFont.load_default(size=size)
    except Exception:  # no FreeType (or a very old Pillow): fixed bitmap font
        return ImageFont.load_default()


def _is_freetype(font: Font) -> bool:
    return isinstance(font, ImageFont.FreeTypeFont)


@functools.cache
def _has_glyph(ch: str, freetype: bool) -> bool:
    if not freetype:
        return ch == " " or (0x20 < ord(ch) < 0x7F) or (0xA0 < ord(ch) <= 0xFF)
    font = _font(16)
    if not _is_freetype(font):
        return _has_glyph(ch, False)
    notdef = font.getmask("\ue000")  # private use: never in the bundled font
    mask = font.getmask(ch)
    return not (mask.size == notdef.size and bytes(mask) == bytes(notdef))


def _drawable(text: str, font: Font) -> str:
    """Replace or drop characters ``font`` cannot draw, and tidy whitespace."""
    freetype = _is_freetype(font)
    out = []
    for ch in unicodedata.normalize("NFC", text):
        if ch.isspace():
            out.append(" ")
            continue
        cat = unicodedata.category(ch)
        if cat[0] == "C" or cat[0] == "M":  # control/format/surrogate, combining marks
            continue
        if _has_glyph(ch, freetype):
            out.append(ch)
            continue
        alt = _TRANSLIT.get(ch)
        if alt is None:
            base = "".join(
                c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c)
            )
            alt = base if base != ch else ""
        out.extend(c for c in alt if _has_glyph(c, freetype))
    return " ".join("".join(out).split())


def _wrap(text: str, font: Font, max_w: float, limit: int) -> tuple[list[str], bool]:
    """Greedy word wrap, stopping once more than ``limit`` lines are known.

    Returns (lines, whether a word had to be broken across lines).
    """
    lines: list[str] = []
    broke = False
    line = ""
    for word in text.split(" "):
        if len(lines) > limit:
            return lines, broke
        cand = f"{line} {word}" if line else word
        if font.getlength(cand) <= max_w:
            line = cand
            continue
        if line:
            lines.append(line)
            line = ""
        while len(lines) <= limit and font.getlength(word) > max_w:
            broke = True
            cut = _fit_prefix(word, font, max_w)
            if cut == 0:
                return lines, True
            lines.append(word[:cut])
            word = word[cut:]
        line = word
    if line:
        lines.append(line)
    return lines, broke


def _fit_prefix(s: str, font: Font, max_w: float) -> int:
    """Length of the longest prefix of ``s`` that fits in ``max_w``."""
    hi = 1  # exponential search first: ``s`` may be a huge unbroken word
    while hi < len(s) and font.getlength(s[:hi]) <= max_w:
        hi *= 2
    lo, hi = hi // 2, min(hi, len(s))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if font.getlength(s[:mid]) <= max_w:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _ellipsize(line: str, font: Font, max_w: float) -> str:
    ell = _ELLIPSIS if _has_glyph(_ELLIPSIS, _is_freetype(font)) else "..."
    line = line.rstrip()
    while line and font.getlength(line + ell) > max_w:
        line = line[:-1].rstrip()
    return (line.rstrip(" ,.;:-") + ell) if line else (ell if font.getlength(ell) <= max_w else "")


def _line_height(font: Font) -> int:
    _, top, _, bottom = font.getbbox("Hgjy")
    return max(1, round((bottom - min(top, 0)) * 1.22)) if _is_freetype(font) else int(bottom) + 3


def _layout(text: str, max_w: float, max_h: float, size: int) -> tuple[Font, list[str]] | None:
    """Choose a font size and wrap ``text`` into at most ``_MAX_LINES`` lines."""
    size = max(size, _MIN_FONT)
    smallest = max(_MIN_FONT, round(size * 0.45))
    candidates = []
    s = float(size)
    while round(s) > smallest:
        candidates.append(round(s))
        s *= 0.86
    candidates.append(smallest)

    # The caption can never show more than this; bounds the work for huge prompts.
    visible = _drawable(text[:_MAX_PROMPT_CHARS], _font(size))
    if not visible:
        return None
    last: tuple[Font, list[str], int] | None = None
    for sz in dict.fromkeys(candidates):
        font = _font(sz)
        room = int(max_h / _line_height(font) - 0.8)  # leave room for the panel's padding
        if room < 1:
            continue
        lines, broke = _wrap(visible, font, max_w, _MAX_LINES)
        if lines and not broke and len(lines) <= min(room, _PREFERRED_LINES):
            return font, lines
        last = (font, lines, room)
        if not _is_freetype(font):
            break
    if last is None:
        return None
    font, lines, room = last
    keep = min(room, _MAX_LINES)
    if not lines:
        return None
    if len(lines) > keep:
        lines = lines[:keep]
        lines[-1] = _ellipsize(lines[-1] + " ", font, max_w)
    lines = [ln for ln in lines if ln]
    return (font, lines) if lines else None


def _draw_texts(img: Image.Image, prompt: str, seed: int, pal: _Palette) -> None:
    w, h = img.size
    base = math.sqrt(w * h)

    footer_band = 0
    fsize = max(_MIN_FONT + 1, round(min(w, h) * 0.019))
    ffont = _font(fsize)
    fline = _line_height(ffont)
    if h >= 8 * fline and w >= 12 * fsize:
        margin = round(fline * 0.8)
        footer = None
        for cand in (
            f"imagen mock \u00b7 seed {seed} \u00b7 {w}\u00d7{h}",
            f"imagen mock \u00b7 seed {seed}",
            f"seed {seed}",
        ):
            cand = _drawable(cand, ffont)
            if ffont.getlength(cand) <= w - 2 * margin:
                footer = cand
                break
        if footer is not None:
            footer_band = fline + 2 * margin
            x = round(w - margin - ffont.getlength(footer))
            y = h - margin - fline
            _draw_lines(img, [(x, y, footer)], ffont, pal, text_alpha=0.78, shadow=0.5)

    area_h = h - footer_band
    max_w = w * 0.82
    layout = _layout(prompt, max_w, area_h * 0.92, round(min(base * 0.062, w * 0.09)))
    if layout is None:
        return
    font, lines = layout
    lh = _line_height(font)
    block_h = lh * len(lines)
    widths = [font.getlength(ln) for ln in lines]
    cx = w / 2
    top = round(area_h * 0.4 - block_h / 2)
    top = max(0, min(top, area_h - block_h))

    # Translucent rounded panel behind the caption.
    pad_x = lh * 0.75
    pad_y = lh * 0.45
    box = (
        max(0, round(cx - max(widths) / 2 - pad_x)),
        max(0, round(top - pad_y)),
        min(w, round(cx + max(widths) / 2 + pad_x)),
        min(h, round(top + block_h + pad_y * 0.6)),
    )
    _panel(img, box, lh * 0.5, pal)
    placed = [
        (round(cx - wd / 2), top + i * lh, ln)
        for i, (ln, wd) in enumerate(zip(lines, widths, strict=True))
    ]
    _draw_lines(img, placed, font, pal, text_alpha=1.0, shadow=0.55)


def _panel(img: Image.Image, box: tuple[int, int, int, int], radius: float, pal: _Palette) -> None:
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    if bw < 2 or bh < 2:
        return
    # Pick the opacity so that light text stays readable on light skies.
    sample = img.crop(box).reduce(max(1, min(bw, bh) // 8))
    bg = ImageStat.Stat(sample).mean
    bg_l = _luma((round(bg[0]), round(bg[1]), round(bg[2])))
    shade_l = _luma(pal.shade)
    target = 0.32
    alpha = _clamp((bg_l - target) / max(1e-3, bg_l - shade_l), 0.22, 0.7)
    # Rounded rectangle mask: two rectangles plus four antialiased quarter discs.
    a = round(255 * alpha)
    r = max(1, min(round(radius), bw // 2, bh // 2))
    mask = Image.new("L", (bw, bh), 0)
    mask.paste(a, (r, 0, bw - r, bh))
    mask.paste(a, (0, r, bw, bh - r))
    disc = _disc(0.04).resize((2 * r, 2 * r), Image.Resampling.BILINEAR)
    disc = disc.point([round(v * alpha) for v in range(256)])
    for cx, cy in ((0, 0), (r, 0), (0, r), (r, r)):
        quarter = disc.crop((cx, cy, cx + r, cy + r))
        mask.paste(quarter, (cx and bw - r, cy and bh - r))
    img.paste(pal.shade, box, mask)


def _draw_lines(
    img: Image.Image,
    lines: Sequence[tuple[int, int, str]],
    font: Font,
    pal: _Palette,
    text_alpha: float,
    shadow: float,
) -> None:
    """Draw text lines (x, y, text) with a soft drop shadow, touching only their region."""
    w, h = img.size
    boxes = [font.getbbox(t) for _, _, t in lines]
    lh = _line_height(font)
    blur = max(1.0, lh * 0.06)
    off = max(1, round(lh * 0.04))
    m = round(blur * 3) + off
    x0 = int(max(0, min(x + b[0] for (x, _, _), b in zip(lines, boxes, strict=True)) - m))
    y0 = int(max(0, min(y + b[1] for (_, y, _), b in zip(lines, boxes, strict=True)) - m))
    x1 = int(min(w, max(x + b[2] for (x, _, _), b in zip(lines, boxes, strict=True)) + m))
    y1 = int(min(h, max(y + b[3] for (_, y, _), b in zip(lines, boxes, strict=True)) + m))
    if x1 <= x0 or y1 <= y0:
        return
    mask = Image.new("L", (x1 - x0, y1 - y0), 0)
    draw = ImageDraw.Draw(mask)
    for x, y, t in lines:
        draw.text((x - x0, y - y0), t, font=font, fill=255)
    region = (x0, y0, x1, y1)
    if shadow > 0:
        sh = mask.filter(ImageFilter.GaussianBlur(blur))
        sh = sh.point([round(v * shadow) for v in range(256)])
        _paste_mask(img, (0, 0, 0), sh, (x0 + off, y0 + off))
    if text_alpha < 1.0:
        mask = mask.point([round(v * text_alpha) for v in range(256)])
    img.paste(pal.text, region, mask)
