#!/usr/bin/env python
"""Train (if needed) and export the project's published weights: Fashion-MNIST mlp5 at the paper's best MLP
graph (inside the sweet spot) and at the complete graph.

    python hub/make_weights.py [--retrain] [--out weights]

Training is ``train/demo.py``'s: the project's trainer with ``train/configs/mlp5_fashion_mnist.yaml``; its
checkpoints under ``demo_output/`` are reused when present. Each model is exported with the publisher into
``weights/<name>/`` (model.safetensors, config.json, README.md) with its measured test accuracy in the card.
"""
import argparse
import csv
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'train'))
sys.path.insert(0, str(ROOT))

from timm_relgraph.hub import export_checkpoint  # noqa: E402


def test_accuracy(folder: Path) -> float:
    """Top-1 (%) on the Fashion-MNIST test split of the model reloaded from its exported folder."""
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config
    from timm_relgraph.data import fashion_mnist

    model = timm.create_model(f'local-dir:{folder}', pretrained=True).eval()
    transform = create_transform(**resolve_data_config({}, model=model), is_training=False)
    data = fashion_mnist(split='test', transform=transform)
    loader = torch.utils.data.DataLoader(data, batch_size=500)
    correct = 0
    with torch.inference_mode():
        for x, y in loader:
            correct += (model(x).argmax(1) == y).sum().item()
    return 100.0 * correct / len(data)

MODELS = {
    'relgraph_mlp5': 'relgraph_mlp5-fashion_mnist',
    'relgraph_mlp5_c1.0_l1.0': 'relgraph_mlp5_c1_0_l1_0-fashion_mnist',
}
CONFIG = ROOT / 'train' / 'configs' / 'mlp5_fashion_mnist.yaml'


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--runs', default=str(ROOT / 'demo_output'), help='training output folder')
    parser.add_argument('--out', default=str(ROOT / 'weights'))
    parser.add_argument('--retrain', action='store_true', help='train again even when checkpoints exist')
    args = parser.parse_args(argv)
    for model, experiment in MODELS.items():
        run = Path(args.runs) / experiment
        if args.retrain or not (run / 'model_best.pth.tar').is_file():
            import trainer
            shutil.rmtree(run, ignore_errors=True)
            trainer.train(trainer.make_args(CONFIG, model=model, output=args.runs, experiment=experiment),
                          progress=False)
        with open(run / 'summary.csv', newline='') as f:
            rows = list(csv.DictReader(f))
        best = max(rows, key=lambda r: float(r['eval_top1']))
        results = {'dataset': 'Fashion-MNIST (60k train / 10k test, 1x28x28)',
                   'recipe': 'train/configs/mlp5_fashion_mnist.yaml (project trainer)',
                   'epochs': len(rows), 'test top-1 (%)': float(best['eval_top1']),
                   'test top-5 (%)': float(best['eval_top5'])}
        name = model.replace('.', '_') + '-fashion_mnist'
        out = Path(args.out) / name
        shutil.rmtree(out, ignore_errors=True)
        export_checkpoint(run / 'model_best.pth.tar', out, results=results)
        size = (out / 'model.safetensors').stat().st_size
        reloaded = test_accuracy(out)
        if abs(reloaded - results['test top-1 (%)']) > 0.011:
            raise SystemExit(f'{out}: reloaded weights score {reloaded:.2f}%, the run recorded '
                             f'{results["test top-1 (%)"]:.2f}%')
        print(f'{model}: top-1 {results["test top-1 (%)"]:.2f}% after {len(rows)} epochs (reloaded from the export: '
              f'{reloaded:.2f}%) -> {out} (model.safetensors {size / 1e6:.1f} MB)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
