"""One module per tab of Diffusion Lab, each with a ``render(shared_schedule)`` function."""
