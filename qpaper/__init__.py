"""qpaper: primary quantization matrix estimation of double JPEG images (Tondi et al., 2021)."""

__version__ = "0.1.0"
