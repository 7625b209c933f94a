"""tinymobile: a small, fast, exact CPU inference engine for MobileNet v1."""
