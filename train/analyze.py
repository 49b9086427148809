#!/usr/bin/env python
"""Thin entry point: `python train/analyze.py ...` is `relgraph analyze ...` (timm_relgraph.analyze)."""
import sys

from timm_relgraph.analyze import main

if __name__ == '__main__':
    sys.exit(main())
