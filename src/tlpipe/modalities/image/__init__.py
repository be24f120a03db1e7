"""Images: class folders or a CSV manifest, a timm/torchvision CNN or ViT, downscaled pixels as the baseline
(``modality.MODALITY``)."""
