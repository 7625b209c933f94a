"""Exceptions raised by tinymobile.

Every error a user can cause with bad input is a :class:`TinyMobileError`, which subclasses
``ValueError`` so callers that already catch ``ValueError`` keep working.
"""


class TinyMobileError(ValueError):
    """Base class of every error tinymobile raises for bad input."""


class ModelFormatError(TinyMobileError):
    """A model file is not a valid tinymobile model (missing keys, wrong shapes, bad version...)."""


class ImageError(TinyMobileError):
    """An image could not be read or converted to RGB."""


class InputError(TinyMobileError):
    """An array passed to ``forward``/``predict`` has the wrong shape, dtype or values."""
