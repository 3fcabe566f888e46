"""Saved cases: the SQLite store, capture from the live screen, export, lab results, the clinic's
report and training exports (`mpox-screen cases`)."""
