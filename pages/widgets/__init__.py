"""Reusable view pieces shared by the tabs (no tab imports another tab)."""
