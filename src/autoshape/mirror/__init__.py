"""Networks grown from an encoder: exact decoders, autoencoders and U-Nets."""

from .decoder import MirrorAutoencoder, MirrorDecoder
from .unet import MirrorUNet

__all__ = ["MirrorAutoencoder", "MirrorDecoder", "MirrorUNet"]
