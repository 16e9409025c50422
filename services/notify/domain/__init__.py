"""Notify domain: what to tell whom and when (pure Python, no gRPC/SQL imports)."""
