"""A plain, hand-written DCGAN training loop in the style of the official PyTorch DCGAN tutorial,
using ganforge's own DCGAN generator and discriminator classes, as a baseline for ganforge.

What mirrors the tutorial:
- N(0, 0.02) conv weights, N(1, 0.02) batchnorm scales, zero batchnorm shifts (weights_init);
- per iteration: (1) D: real batch labelled 1, backward; fake batch labelled 0 (G's output
  detached), backward; step D. (2) G: the *same* fake batch through the updated D, labelled 1,
  backward; step G;
- binary cross-entropy (on logits here, because ganforge's D returns logits: BCEWithLogitsLoss
  is BCELoss(sigmoid(x)) computed stably), Adam lr 2e-4, betas (0.5, 0.999) for both nets;
- images scaled to [-1, 1]; shuffled epochs of batch 64 with the last partial batch kept
  (DataLoader's default drop_last=False);
- no EMA, no label smoothing, no checkpoints or logging beyond an optional print.

One "step" is one iteration (one D update and one G update), as in ganforge.

The tutorial shows samples from G left in training mode (batchnorm uses the statistics of the
sampled batch). `sample_plain` can sample in either mode; report both.

    python benchmarks/plain_dcgan_loop.py --steps 1500 --out benchmarks/out/plain_dcgan.png
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ganforge.data import load_dataset, to_uint8
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.report import save_images

Z_DIM = 100
RESOLUTION = 28
CHANNELS = 1


def weights_init(m: nn.Module) -> None:
    """The tutorial's initialisation (ganforge's classes already draw the same distribution)."""
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm") != -1:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0)


class PlainDCGAN:
    """The tutorial's networks, loss and optimisers, and its training iteration (`step`).
    `benchmarks/train_throughput.py` times this against ganforge's loop."""

    def __init__(
        self,
        width: int = 64,
        resolution: int = RESOLUTION,
        channels: int = CHANNELS,
        device: torch.device | str = "cpu",
    ):
        self.netG = DCGANGenerator(
            z_dim=Z_DIM, img_resolution=resolution, img_channels=channels, width=width
        ).to(device)
        self.netD = DCGANDiscriminator(
            img_resolution=resolution, img_channels=channels, width=width
        ).to(device)
        self.netG.apply(weights_init)
        self.netD.apply(weights_init)
        self.netG.train()
        self.netD.train()
        self.device = device
        self.criterion = nn.BCEWithLogitsLoss()
        self.optimizerD = torch.optim.Adam(self.netD.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optimizerG = torch.optim.Adam(self.netG.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(self, real: torch.Tensor) -> dict[str, float]:
        """One iteration on a batch of real images in [-1, 1]: D, then G (the tutorial's)."""
        netD, netG, criterion = self.netD, self.netG, self.criterion
        real_label, fake_label = 1.0, 0.0
        b_size = real.size(0)

        # (1) Update D: maximise log(D(x)) + log(1 - D(G(z)))
        netD.zero_grad()
        label = torch.full((b_size,), real_label, dtype=torch.float, device=self.device)
        output = netD(real).view(-1)
        errD_real = criterion(output, label)
        errD_real.backward()
        D_x = torch.sigmoid(output).mean().item()

        noise = torch.randn(b_size, Z_DIM, 1, 1, device=self.device)
        fake = netG(noise)
        label.fill_(fake_label)
        output = netD(fake.detach()).view(-1)
        errD_fake = criterion(output, label)
        errD_fake.backward()
        D_G_z1 = torch.sigmoid(output).mean().item()
        errD = errD_real + errD_fake
        self.optimizerD.step()

        # (2) Update G: maximise log(D(G(z))) (fake labels are real for the generator)
        netG.zero_grad()
        label.fill_(real_label)
        output = netD(fake).view(-1)
        errG = criterion(output, label)
        errG.backward()
        D_G_z2 = torch.sigmoid(output).mean().item()
        self.optimizerG.step()
        return {
            "loss_d": errD.item(),
            "loss_g": errG.item(),
            "d_x": D_x,
            "d_g_z1": D_G_z1,
            "d_g_z2": D_G_z2,
        }


def train_plain(
    steps: int, batch_size: int = 64, width: int = 64, seed: int = 0, log_every: int = 0
) -> nn.Module:
    """Train G and D for `steps` iterations on mnist-mini; returns the generator (train mode)."""
    torch.manual_seed(seed)
    data = load_dataset("mnist-mini")
    images = data.images.float() / 127.5 - 1.0  # uint8 [0, 255] -> [-1, 1], (N, 1, 28, 28)
    n = images.shape[0]
    plain = PlainDCGAN(width)

    step, epoch = 0, 0
    start = time.perf_counter()
    while step < steps:
        order = torch.randperm(n)
        for first in range(0, n, batch_size):
            if step >= steps:
                break
            losses = plain.step(images[order[first : first + batch_size]])
            step += 1
            if log_every and (step % log_every == 0 or step == steps):
                print(
                    f"[{epoch}][{step}/{steps}] Loss_D: {losses['loss_d']:.4f} "
                    f"Loss_G: {losses['loss_g']:.4f} D(x): {losses['d_x']:.4f} "
                    f"D(G(z)): {losses['d_g_z1']:.4f} / {losses['d_g_z2']:.4f} "
                    f"({time.perf_counter() - start:.0f}s)",
                    flush=True,
                )
        epoch += 1
    return plain.netG


@torch.no_grad()
def sample_plain(
    netG: nn.Module, n: int, seed: int = 0, mode: str = "eval", batch_size: int = 64
) -> np.ndarray:
    """`n` samples as uint8 (N, H, W, C) from seeded noise, without touching global RNG.

    mode="eval": batchnorm uses its running statistics (how ganforge samples).
    mode="train": batchnorm uses each batch's own statistics (what the tutorial shows, with
    batches of 64); this runs on a copy so the real net's running statistics stay unchanged.
    """
    if mode not in ("eval", "train"):
        raise ValueError(f"mode must be 'eval' or 'train', got {mode!r}")
    generator = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, Z_DIM, 1, 1, generator=generator)
    network = copy.deepcopy(netG)
    network.train(mode == "train")
    chunks = [to_uint8(network(z)) for z in noise.split(batch_size)]
    return torch.cat(chunks).permute(0, 2, 3, 1).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description="Plain PyTorch-tutorial DCGAN on mnist-mini")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log-every", type=int, default=100)
    parser.add_argument(
        "--out",
        default=str(Path(__file__).resolve().parent / "out" / "plain_dcgan.png"),
        help="grid PNG of 64 samples in train mode (as the tutorial shows); "
        "an eval-mode grid is written next to it with suffix _eval",
    )
    args = parser.parse_args()

    start = time.perf_counter()
    netG = train_plain(args.steps, args.batch_size, args.width, args.seed, args.log_every)
    print(f"trained {args.steps} steps in {time.perf_counter() - start:.1f}s")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_images(sample_plain(netG, 64, args.seed, mode="train"), out)
    eval_out = out.with_name(out.stem + "_eval" + out.suffix)
    save_images(sample_plain(netG, 64, args.seed, mode="eval"), eval_out)
    print(f"wrote {out} (G in train mode) and {eval_out} (G in eval mode)")


if __name__ == "__main__":
    main()
