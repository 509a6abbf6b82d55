"""A plain multi-layer perceptron."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "tanh": nn.Tanh}


class MLP(nn.Module):
    """``Linear -> activation -> [LayerNorm] -> Dropout`` per hidden layer, then a final ``Linear``.

    With ``hidden_dims=(256,)`` and ReLU this is the Scene Sense head:
    ``Linear(in -> 256) -> ReLU -> Dropout -> Linear(256 -> out)``.

    Args:
        in_dim: input size.
        out_dim: output size.
        hidden_dims: hidden layer sizes, in order (empty: a single ``Linear``).
        dropout: dropout after each hidden activation.
        activation: one of ``"relu"``, ``"gelu"``, ``"tanh"``.
        norm: LayerNorm after each hidden activation.

    Raises:
        ValueError: on an unknown activation, a non-positive size or dropout outside ``[0, 1)``.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dims: Sequence[int] = (),
        dropout: float = 0.0,
        activation: str = "relu",
        norm: bool = False,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose from {sorted(_ACTIVATIONS)}")
        sizes = [in_dim, *hidden_dims, out_dim]
        if any(s < 1 for s in sizes):
            raise ValueError(f"layer sizes must be >= 1, got {sizes}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        layers: list[nn.Module] = []
        for a, b in zip(sizes[:-2], sizes[1:-1], strict=True):
            layers += [nn.Linear(a, b), _ACTIVATIONS[activation]()]
            if norm:
                layers.append(nn.LayerNorm(b))
            layers.append(nn.Dropout(dropout))
        layers.append(nn.Linear(sizes[-2], sizes[-1]))
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.net = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the MLP.

        Args:
            x: ``[..., in_dim]`` input.

        Returns:
            ``[..., out_dim]`` output.
        """
        return self.net(x)
