"""Small data sets and sample images that load offline."""

from d2lcnn.data.images import SAMPLE_IMAGES, sample_image, sample_image_path

__all__ = ["SAMPLE_IMAGES", "sample_image", "sample_image_path"]
