#!/usr/bin/env python
"""Thin entry point: `python train/demo.py ...` is `relgraph demo ...` (timm_relgraph.demo)."""
import sys

from timm_relgraph.demo import main

if __name__ == '__main__':
    sys.exit(main())
