"""qpaper: primary quantization matrix estimation of double JPEG images (Tondi et al., 2021)."""

__version__ = "0.1.0"


def load_model(path):
    """Load a qpaper ``.keras`` model from anywhere: the custom layers (the class head's block
    softmax, the block-DCT front end) are registered first, the file loads with
    ``safe_mode=True``, and a registered model (``models/*/manifest.json``) must match its sha256.
    ``keras.saving.load_model`` alone cannot find those layers unless ``qpaper.model`` was imported."""
    from .registry import load_file
    return load_file(path)
