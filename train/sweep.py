#!/usr/bin/env python
"""Thin entry point: `python train/sweep.py ...` is `relgraph sweep ...` (timm_relgraph.sweep)."""
import sys

from timm_relgraph.sweep import main

if __name__ == '__main__':
    sys.exit(main())
