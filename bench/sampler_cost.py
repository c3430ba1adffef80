"""Sampler cost: ms per reverse step for the 2D MLP (1000 points) and the default U-Net (16 images).

    python -m bench.sampler_cost [--threads 2]

Writes bench/results/sampler_cost.json.
"""

from __future__ import annotations

import argparse

import torch

from bench.common import median_ms, write_results
from diffusion_core.models import build_model, count_parameters
from diffusion_core.presets import DIGITS, TOY
from diffusion_core.sampling import ddim_step, ddpm_step
from diffusion_core.schedule import NoiseSchedule


def per_step(preset, batch_shape, sampler: str) -> dict:
    torch.manual_seed(0)
    model = build_model(preset.model).eval()
    sched = NoiseSchedule(preset.schedule)
    x = torch.randn(batch_shape)
    t = sched.T // 2
    tb = torch.full((batch_shape[0],), t, dtype=torch.long)
    g = torch.Generator().manual_seed(0)

    def step():
        with torch.inference_mode():
            eps = model(x, tb)
            if sampler == "ddpm":
                ddpm_step(sched, x, t, t - 1, eps, generator=g)
            else:
                ddim_step(sched, x, t, t - 20, eps, eta=0.0)

    return {"batch_shape": list(batch_shape), "parameters": count_parameters(model),
            "sampler": sampler, **median_ms(step, repeat=50)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {
        "mlp_1000_points": per_step(TOY, (1000, 2), "ddpm"),
        "unet_16_digits": per_step(DIGITS, (16, 1, 16, 16), "ddim"),
        "unet_64_digits": per_step(DIGITS, (64, 1, 16, 16), "ddim"),
    }
    for name, r in results.items():
        print(f"{name:>16}: {r['median_ms']:8.3f} ms/step (median; p90 {r['p90_ms']:.3f}), "
              f"{r['parameters']:,} parameters")
    write_results("sampler_cost", {"threads": args.threads, "results": results})


if __name__ == "__main__":
    main()
