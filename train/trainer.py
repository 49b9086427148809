#!/usr/bin/env python
"""Thin entry point: `python train/trainer.py ...` is `relgraph train ...` (timm_relgraph.trainer)."""
import sys

from timm_relgraph.trainer import main

if __name__ == '__main__':
    sys.exit(main())
