"""Diffusion Lab's engine: schedules, forward process, samplers, models, training, data.

Index convention everywhere: t ∈ {0, …, T−1}; ``alphas_cumprod[t] = ∏_{s≤t}(1 − β_s)``;
t = 0 is one noising step and ᾱ at t = −1 is 1. This package never imports gradio.
"""
