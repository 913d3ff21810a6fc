"""Decoders built from an encoder's own modules that restore its input shape exactly.

The encoder is traced once on meta tensors (no compute, no activation memory). Each
shape-changing step gets a mirror layer, in reverse order and with channels reversed: what
undoes each step comes from the registry of layer rules, and where norms and activations go
from :mod:`autoshape.mirror.assemble`.
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ..core.text import format_shape
from ..errors import ShapeError
from ..rules import Options, PoolMirror
from ..tracing import Selector
from .assemble import assemble, channels_of
from .chain import Chain, check_activation, encoder_chain, replays, wrong_rank
from .faithful import check_replay

__all__ = ["MirrorAutoencoder", "MirrorDecoder"]


def _options(encoder: nn.Module, final_activation: object, pool_mirror: object, tie_weights: object) -> Options:
    check_activation(final_activation)
    return Options.for_encoder(encoder, pool_mirror, tie_weights)


class MirrorDecoder(nn.Sequential):
    """The decoder an expert would write for ``encoder``: ``decoder(encoder(x)).shape == x.shape``.

    The encoder is traced on meta tensors through its real forward and read as the chain of
    modules it runs. The decoder undoes the chain's shape-changing steps in reverse order:

    * ``Conv1d/2d/3d`` becomes the transposed conv with the same kernel, stride, padding,
      dilation and groups, channels reversed, and the output_padding that restores the size
      exactly (any padding, ``'same'`` and ``'valid'`` too; ``padding_mode`` only affects values:
      transposed convs pad with zeros). Where no transposed conv with that kernel is exact (an
      even kernel with ``padding='same'``) it becomes a ``TargetConvTranspose`` one size larger.
    * Max/avg/LP pooling becomes interpolation to the exact size (``pool_mirror``), or a
      learned transposed conv. Adaptive pooling is always interpolated: its stride depends
      on the input size, so no fixed transposed conv undoes it.
    * ``Linear`` becomes ``Linear`` with the features swapped; ``Flatten`` becomes ``Unflatten``.
    * A module whose forward is not a chain of modules (a residual block) is a unit: if it keeps
      the shape it is copied like a norm (below); if it shrinks sizes like a convolution it gets
      a transposed conv fitted to it by probing it on meta tensors at neighbouring sizes; else
      the constructor raises.

    Shape-keeping steps (norms, activations, dropout, identity, shape-keeping units) are placed
    per resolution as the encoder had them: after undoing a step, the decoder stands at the
    shape the encoder had before it, and applies fresh copies (re-initialised) of what the
    encoder applied at that shape. The output gets ``final_activation`` and no norm.

    Args:
        encoder: any module whose forward is a chain of the modules above (nested
            ``nn.Sequential`` and custom modules included). Its parameters, buffers and
            training flags are left untouched.
        input_shape: one sample's shape ``(C, *spatial)``; a full shape with the batch, or an
            example tensor, is also accepted (a leading batch is recognised because the
            encoder refuses the shape with a batch of one prepended).
        final_activation: a module applied to the output, e.g. ``nn.Sigmoid()``. Default none.
        tie_weights: each transposed conv mirroring an encoder conv shares that conv's weight
            Parameter (the adjoint operator). Biases, Linear weights and other mirrors are not tied.
        pool_mirror: ``'nearest'`` (default: interpolation, no parameters, like the pooling it
            undoes), ``'linear'`` (linear/bilinear/trilinear interpolation) or ``'conv'`` (a
            learned transposed conv, stride = the pooling's, fitted to be exact at every size).
        output: the latent, when the encoder returns more than one tensor: an index of a tuple, a
            list or an HF ``ModelOutput`` (its fields that are not None, in order, as ``out[0]``), a
            key of a dict, an attribute name (``ModelOutput``), or a callable applied to the return
            value. None (default): the return value, which must be a tensor. Only the calls on the
            data path to it are mirrored.

    Attributes:
        input_shape: the traced encoder input shape, batch included.
        latent_shape: the encoder's output shape for it, which the decoder takes.
        encoder_steps: dotted paths of the encoder modules whose calls, in this order, are the
            encoder's forward (``''`` is the encoder itself).
        restores: one entry per decoder layer: the index in ``encoder_steps`` of the step whose
            input shape the layer restores when ``forward`` is given ``sizes``, else None.

    Shape:
        Input ``latent_shape`` with any batch size; output ``input_shape`` with that batch size.
        A stride-``s`` conv maps ``s`` input sizes to each output size; its mirror reaches them
        all: ``out = (in-1)·stride - 2·padding + dilation·(kernel_size-1) + output_padding + 1``
        with ``0 <= output_padding < stride``. Given ``sizes`` (the input shape of every encoder
        step, recorded on the way down, as MirrorAutoencoder does), each mirror hits its
        recorded size, so every input size the encoder accepts comes back exactly.

    Examples:
        >>> import torch
        >>> encoder = nn.Sequential(nn.Conv2d(128, 256, 3, stride=2, padding=1), nn.ReLU())
        >>> decoder = MirrorDecoder(encoder, (128, 24, 24))
        >>> decoder
        MirrorDecoder(
          (0): ConvTranspose2d(256, 128, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
        )
        >>> decoder(encoder(torch.randn(2, 128, 24, 24))).shape
        torch.Size([2, 128, 24, 24])
        >>> MirrorDecoder(encoder, (128, 25, 25))(encoder(torch.randn(2, 128, 25, 25))).shape
        torch.Size([2, 128, 25, 25])

    Raises:
        TypeError: ``encoder`` or ``final_activation`` is not a module, or ``tie_weights`` is not a bool.
        ValueError: a bad ``input_shape`` or ``pool_mirror``.
        ShapeError: a part of the encoder cannot be mirrored exactly (the message names its dotted
            path and type and what to do), or ``forward`` gets a latent of another rank or channel
            count than ``latent_shape`` (or, without ``sizes``, of another spatial size), or the
            encoder's own forward fails on ``input_shape`` (its message quoted, with the channels its
            first layer takes where that is why).
    """

    def __init__(
        self,
        encoder: nn.Module,
        input_shape: Sequence[int] | Tensor,
        *,
        final_activation: nn.Module | None = None,
        tie_weights: bool = False,
        pool_mirror: PoolMirror = "nearest",
        output: Selector = None,
    ) -> None:
        options = _options(encoder, final_activation, pool_mirror, tie_weights)
        self._build(encoder_chain(encoder, input_shape, output), options, final_activation)

    @classmethod
    def _from_chain(cls, chain: Chain, options: Options, final_activation: nn.Module | None) -> MirrorDecoder:
        decoder = cls.__new__(cls)
        decoder._build(chain, options, final_activation)
        return decoder

    def _build(self, chain: Chain, options: Options, final_activation: nn.Module | None) -> None:
        entries = assemble(chain.record, chain.steps, options, in_channels=channels_of(chain.output_shape),
                           out_channels=channels_of(chain.input_shape), final_activation=final_activation)
        super().__init__(*(entry.module for entry in entries))
        self.input_shape = chain.input_shape
        self.latent_shape = chain.output_shape
        self.encoder_steps = tuple(step.name for step in chain.steps)
        self.restores = tuple(entry.sized_by for entry in entries)

    def forward(self, input: Tensor, sizes: Sequence[Sequence[int]] | None = None) -> Tensor:
        """Decode ``input``; with ``sizes`` (every encoder step's input shape) hit those sizes."""
        self._check_latent(input, sized=sizes is not None)
        for layer, step in zip(self, self.restores):
            input = layer(input) if step is None or sizes is None else layer(input, sizes[step])
        return input

    def _check_latent(self, input: Tensor, sized: bool) -> None:
        """The latent's rank and channels; its spatial size too where no ``sizes`` say where to go."""
        got, built, traced = tuple(input.shape), self.latent_shape, self.input_shape
        if got[1:] == built[1:] or (sized and len(got) == len(built) and got[1] == built[1]):
            return
        expected = f"(N, {', '.join(map(str, built[1:]))})"
        sample = f"(N, {', '.join(map(str, traced[1:]))})"
        if len(got) != len(built) or got[1] != built[1]:
            what = (f"{len(got)} dimensions instead of {len(built)}" if len(got) != len(built) else
                    f"{got[1]} {'channels' if len(built) > 2 else 'features'} instead of {built[1]}")
            fix = ("pass a batch, e.g. z.unsqueeze(0) for one latent" if len(got) == len(built) - 1 else
                   f"decode what the encoder returns, decoder(encoder(x)) for x of shape {sample}")
        else:
            what = f"spatial size {got[2:]} instead of {built[2:]}"
            fix = ("use MirrorAutoencoder (it records every size per call), or build the decoder for the size of "
                   f"the inputs these latents come from, MirrorDecoder(encoder, ({traced[1]}, *size))")
        raise ShapeError(
            f"MirrorDecoder was built for latents of shape {expected} (the encoder's output for inputs {sample}) "
            f"but got {got}: {what}. Fix: {fix}."
        )


class MirrorAutoencoder(nn.Module):
    """``encoder`` and its :class:`MirrorDecoder`, exact for every input size the encoder accepts.

    ``forward`` replays the encoder's modules (``decoder.encoder_steps``) and records the
    input shape of each on the way down; on the way up every mirror hits its recorded size
    (``output_size`` for transposed convs). So one instance reconstructs 24×24 and 25×25
    inputs alike. No per-call Python state: it compiles with ``torch.compile(fullgraph=True)``.

    Args:
        encoder: as for :class:`MirrorDecoder`; kept as ``.encoder`` (not copied). Its forward
            must run the same modules for every input size.
        input_shape: a shape to trace the encoder with (one sample, or with the batch).
        final_activation: as for :class:`MirrorDecoder`.
        tie_weights: as for :class:`MirrorDecoder`.
        pool_mirror: as for :class:`MirrorDecoder`.
        output: as for :class:`MirrorDecoder`.

    Attributes:
        encoder: the given encoder.
        decoder: its :class:`MirrorDecoder`.

    Shape:
        Input ``(N, C, *spatial)`` of any size the encoder accepts; output the same shape.
        The latent is whatever the encoder returns (``ae.encoder(x)``).

    Examples:
        >>> import torch
        >>> encoder = nn.Sequential(nn.Conv2d(1, 8, 3, stride=2, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        ...                         nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU())
        >>> model = MirrorAutoencoder(encoder, (1, 28, 28), final_activation=nn.Sigmoid())
        >>> model.decoder
        MirrorDecoder(
          (0): ConvTranspose2d(16, 8, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
          (1): BatchNorm2d(8, ...)
          (2): ReLU()
          (3): ConvTranspose2d(8, 1, kernel_size=(3, 3), stride=(2, 2), padding=(1, 1), output_padding=(1, 1))
          (4): Sigmoid()
        )
        >>> [tuple(model(torch.rand(2, 1, n, n)).shape) for n in (28, 27, 31)]
        [(2, 1, 28, 28), (2, 1, 27, 27), (2, 1, 31, 31)]

    Raises:
        TypeError, ValueError, ShapeError: as :class:`MirrorDecoder`, at construction.
        ShapeError: in ``forward``, an input whose batch the encoder does not keep (a ``view`` written
            for another size, ``x.view(-1, 400)``), so no sample can be given back.
    """

    def __init__(
        self,
        encoder: nn.Module,
        input_shape: Sequence[int] | Tensor,
        *,
        final_activation: nn.Module | None = None,
        tie_weights: bool = False,
        pool_mirror: PoolMirror = "nearest",
        output: Selector = None,
    ) -> None:
        super().__init__()
        options = _options(encoder, final_activation, pool_mirror, tie_weights)
        chain = encoder_chain(encoder, input_shape, output)
        check_replay(encoder, chain, output, "MirrorAutoencoder")
        self.encoder = encoder
        self.decoder = MirrorDecoder._from_chain(chain, options, final_activation)
        self._steps = replays(chain, encoder)  # the encoder's own modules and calls, owned by .encoder

    def forward(self, x: Tensor) -> Tensor:
        """Encode ``x`` step by step, recording sizes, and decode back to exactly ``x.shape``."""
        if x.dim() != len(self.decoder.input_shape):
            raise wrong_rank(self, x, self.decoder.input_shape)
        sizes = []
        for step in self._steps:
            sizes.append(x.shape)
            x = step(x)
        if x.shape[0] != sizes[0][0]:
            raise self._batch_changed([*sizes, x.shape])
        if x.dim() == 2 and x.shape[1] != self.decoder.latent_shape[1]:
            raise self._flat_latent(sizes[0], x.shape)
        out: Tensor = self.decoder(x, sizes)
        return out

    def _flat_latent(self, given: Sequence[int], latent: Sequence[int]) -> ShapeError:
        """The error for an input size whose flattened latent is another width than the decoder's."""
        built, width = self.decoder.input_shape, self.decoder.latent_shape[1]
        return ShapeError(
            f"MirrorAutoencoder was built for inputs (N, {', '.join(map(str, built[1:]))}); its encoder flattens, so "
            f"its latent has a fixed width, {width}, and it takes only that input size. Got {format_shape(given)}, "
            f"whose latent is {format_shape(latent)}. Fix: call it at (N, {', '.join(map(str, built[1:]))}), or build "
            "it at the size you call it with."
        )

    def _batch_changed(self, sizes: Sequence[Sequence[int]]) -> ShapeError:
        """The error for a forward whose encoder step turned the batch into another number of rows."""
        at = next(n for n in range(len(sizes) - 1) if sizes[n + 1][0] != sizes[n][0])
        step = self._steps[at]
        name = f"'{next(k for k, m in self.encoder.named_modules() if m is step)}'" if isinstance(step, nn.Module) \
            else getattr(step, "name", repr(step))
        built = self.decoder.input_shape
        return ShapeError(
            f"at {format_shape(sizes[0])} the encoder's {name} turned {format_shape(sizes[at])} into "
            f"{format_shape(sizes[at + 1])}: it changed the batch from {sizes[at][0]} to {sizes[at + 1][0]}, so its "
            "rows no longer hold one sample each and no decoder can give each sample back (a view written for another "
            f"input size, such as x.view(-1, 400)). Fix: call the autoencoder at the size it was built for, "
            f"(N, {', '.join(map(str, built[1:]))}), or keep the batch in the encoder's forward (torch.flatten(x, 1) "
            "in place of x.view(-1, ...)) and build the autoencoder at the size you call it with."
        )
