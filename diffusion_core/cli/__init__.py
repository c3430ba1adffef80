"""The command-line tools ``python -m diffusion_core.train`` and ``… .sample``.

Both drive the same engine (and the same workflows) as the app; bad arguments exit with status
2 and one line on stderr.
"""
