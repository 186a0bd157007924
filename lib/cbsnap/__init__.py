"""cbsnap: event-driven CBS cloud-disk snapshots on Tencent Cloud SCF.

The package root imports nothing heavy on purpose: every SCF cold start pays for
each import, so handlers import exactly the modules they use.
"""

__version__ = "0.1.0"
