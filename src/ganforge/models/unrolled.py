"""Unrolled GAN (Metz et al. 2017): G's loss is taken against D as D would be after K more of
its own updates on this batch, and G's gradient flows through those updates. A generator that
piles its samples onto one mode is then told that D would follow it there, which is what
keeps it spread out.

Each unrolled update is a differentiable copy of the step D's optimiser (Adam, RMSprop or SGD
with momentum, as the loop built it) would take from its current state: the same learning
rate, moments and step count, so K=0 is the plain GAN and the unrolled D is the D of K
iterations later had G stood still. The unrolled parameters are thrown away afterwards: D
itself still learns only in its own phase.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

Parameters = dict[str, torch.Tensor]

_TINY = 1e-30  # keeps sqrt differentiable where a moment is exactly 0 (a weight never used)


def plain_module(network: nn.Module) -> nn.Module:
    """The module itself behind a compiled (`_orig_mod`) or DDP (`module`) stand-in: unrolling
    differentiates twice, which compiled graphs do not, and needs the plain parameter names."""
    while True:
        inner = getattr(network, "_orig_mod", None) or getattr(network, "module", None)
        if not isinstance(inner, nn.Module):
            return network
        network = inner


def unrolled_discriminator(
    discriminator: nn.Module,
    optimizer: torch.optim.Optimizer,
    d_loss: Callable[[Callable[..., torch.Tensor]], torch.Tensor],
    steps: int,
) -> Callable[..., torch.Tensor]:
    """D after `steps` differentiable updates of `optimizer` on `d_loss(network)` (the loss of
    D given as a callable network), as a callable with D's signature. D's own parameters,
    gradients and buffers are left as they are (the unrolled calls run on copies of the
    buffers: batchnorm's running statistics, spectral norm's vectors)."""
    module = plain_module(discriminator)
    named = dict(module.named_parameters())
    buffers = {name: b.clone() for name, b in module.named_buffers()}
    update = OptimizerStep(optimizer, named)
    params = {name: p.detach().requires_grad_(True) for name, p in named.items()}

    def network_of(values: Parameters) -> Callable[..., torch.Tensor]:
        return lambda *inputs: functional_call(module, {**values, **buffers}, inputs)

    for _ in range(steps):
        loss = d_loss(network_of(params))
        grads = torch.autograd.grad(loss, list(params.values()), create_graph=True)
        params = update(params, dict(zip(params, grads, strict=True)))
    return network_of(params)


class OptimizerStep:
    """The update `optimizer` makes, as differentiable tensor arithmetic, continuing from its
    state for the parameters `named` (a parameter with no state yet starts as the optimiser
    would: zero moments, step 0). Weight decay and the rarer variants (AMSGrad, Nesterov,
    centred RMSprop) are refused: the loop never builds them."""

    def __init__(self, optimizer: torch.optim.Optimizer, named: dict[str, nn.Parameter]):
        if len(optimizer.param_groups) != 1:
            raise ValueError("an unrolled optimiser has one parameter group")
        group = optimizer.param_groups[0]
        if group.get("weight_decay", 0) or group.get("amsgrad") or group.get("nesterov"):
            raise ValueError("unrolling supports plain Adam, RMSprop and SGD (with momentum)")
        if group.get("centered") or group.get("maximize") or group.get("dampening", 0):
            raise ValueError("unrolling supports plain Adam, RMSprop and SGD (with momentum)")
        self.kind = type(optimizer).__name__
        if self.kind not in ("Adam", "RMSprop", "SGD"):
            raise ValueError(f"unrolling does not know the optimiser {self.kind}")
        self.group = group
        self.state: dict[str, dict[str, torch.Tensor | float]] = {}
        for name, p in named.items():
            state = optimizer.state.get(p, {})
            self.state[name] = {
                key: (float(value) if key == "step" else value.detach())
                for key, value in state.items()
                if value is not None
            }

    def __call__(self, params: Parameters, grads: Parameters) -> Parameters:
        return {name: self._step(name, params[name], grads[name]) for name in params}

    def _step(self, name: str, p: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        group, state = self.group, self.state[name]
        lr = float(group["lr"])
        step = state["step"] = state.get("step", 0.0) + 1.0
        if self.kind == "Adam":
            beta1, beta2 = group["betas"]
            m = state["exp_avg"] = beta1 * state.get("exp_avg", 0.0) + (1 - beta1) * g
            v = state["exp_avg_sq"] = beta2 * state.get("exp_avg_sq", 0.0) + (1 - beta2) * g * g
            m_hat = m / (1 - beta1**step)
            v_hat = v / (1 - beta2**step)
            return p - lr * m_hat / (v_hat.clamp_min(_TINY).sqrt() + group["eps"])
        momentum = group["momentum"]
        if self.kind == "RMSprop":
            alpha = group["alpha"]
            v = state["square_avg"] = alpha * state.get("square_avg", 0.0) + (1 - alpha) * g * g
            g = g / (v.clamp_min(_TINY).sqrt() + group["eps"])
        if momentum:
            previous = state.get("momentum_buffer")
            if previous is None and self.kind == "SGD":
                buffer = g  # SGD's first step takes the gradient itself as its buffer
            else:  # RMSprop's buffer starts at zero
                buffer = momentum * (0.0 if previous is None else previous) + g
            state["momentum_buffer"] = g = buffer
        return p - lr * g
