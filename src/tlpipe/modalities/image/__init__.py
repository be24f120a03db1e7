"""Images: class folders or a CSV manifest, a timm/torchvision CNN or ViT, downscaled pixels as the baseline."""

from tlpipe.modalities.image.modality import ImageModality

MODALITY = ImageModality()
