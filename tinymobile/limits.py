"""Limits on what a model may declare, defined once (model files are untrusted input).

The readers, the converters and the structural check all refuse a model past these before any
large allocation; docs/FORMAT.md and SECURITY.md quote them.
"""

#: Input height and width accepted, pixels per side.
MAX_INPUT_SIZE = 4096
#: Smallest input side ``forward`` takes for a model run at another size than its own (five
#: stride-2 layers take 32 pixels to 1).
MIN_INPUT_SIZE = 32
#: Largest activation of one image a network may need, in bytes (MobileNet v1 1.0 at 224: 3.2 MB).
MAX_ACTIVATION_BYTES = 1 << 31
#: Most layers a network may have (MobileNet v1: 29).
MAX_LAYERS = 256
#: Most depthwise layers a model file may declare (MobileNet v1: 13).
MAX_DEPTHWISE_LAYERS = 64
#: Largest array one model file may declare, in bytes (MobileNet v1 1.0's largest is 4 MB).
MAX_ARRAY_BYTES = 1 << 28
#: Most array data one model file may make tinymobile inflate, in bytes (MobileNet v1 1.0: 17 MB).
MAX_MODEL_BYTES = 1 << 29
#: A member of more than MAX_RATIO_FREE_BYTES that inflates more than MAX_COMPRESSION_RATIO times
#: is refused before inflating (float weights compress ~1.1 times; deflate's limit is ~1032).
MAX_RATIO_FREE_BYTES = 1 << 20
MAX_COMPRESSION_RATIO = 200
#: Longest string (format, activation, padding, one label) read, in characters.
MAX_NAME_CHARS = 256
#: Most classes a model may have (labels included).
MAX_CLASSES = 1 << 16
