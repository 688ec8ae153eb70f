"""How an image was made, inside the image file: writing it without touching the
pixels, and reading it back from imagen's files and everyone else's.

- ``infotext``: A1111's ``parameters`` text, written and parsed;
- ``png``, ``jpeg``, ``webp``: chunk- and segment-level editing of each format;
- ``embed``: what imagen writes into a finished image;
- ``read``: ``imagen info``: every convention we know, normalised.
"""
