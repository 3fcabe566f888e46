"""Stand-ins for hardware this machine lacks (a Pi camera, a camera that drops out or hangs),
with the same interfaces as the real thing."""
