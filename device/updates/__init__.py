"""Signed updates: Ed25519 signatures, the bundle store with its atomic switch and rollback
(`mpox-screen bundle`)."""
