"""Formats shared by catalog rows and order requests, kept free of heavy imports."""

from __future__ import annotations

SKU_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
