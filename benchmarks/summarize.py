"""Markdown summary of benchmark CSVs (from benchmarks/benchmark.py): one table per CSV.

    python benchmarks/summarize.py benchmarks/results_cpu_b8_224.csv benchmarks/results_cpu_b8_224_r25.csv \\
        benchmarks/results_cpu_b64_64.csv benchmarks/results_cpu_b64_64_r25.csv benchmarks/results_cpu_b64_64_r41.csv \\
        > benchmarks/RESULTS_cpu.md
"""
import csv
import sys


def table(path: str) -> str:
    with open(path, newline='') as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return f'{path}: no rows\n'
    first = rows[0]
    lines = [f'### `{path}`', '',
             f"batch {first['infer_batch_size']}, ImageNet families at "
             f"{max(int(r['infer_img_size']) for r in rows)} px (mlp5 at 32 px), device {first['device']}, "
             f"amp {first['amp']}" + (f", {first['stat']}" if first.get('stat') else ''), '',
             '| family | model | role | params (M) | stored MB | GMACs | infer ms | infer / folded | train ms | '
             'train / folded |', '|---|---|---|---:|---:|---:|---:|---:|---:|---:|']
    for r in rows:
        lines.append(f"| {r['family']} | `{r['model']}` | {r['role']} | {float(r['param_count']):.3f} | "
                     f"{int(r['stored_bytes']) / 1e6:.1f} | {float(r['gmacs']):.3f} | {float(r['infer_step_time']):.1f} | "
                     f"{float(r['infer_vs_folded']):.2f} | "
                     + (f"{float(r['train_step_time']):.1f} | {float(r['train_vs_folded']):.2f} |"
                        if r['train_step_time'] else '- | - |'))
    return '\n'.join(lines) + '\n'


def main(argv=None) -> int:
    paths = (argv if argv is not None else sys.argv[1:])
    if not paths:
        print(__doc__, file=sys.stderr)
        return 2
    print('# Benchmark results\n')
    print('Written by `python benchmarks/summarize.py` from the CSVs of `benchmarks/benchmark.py` (see its '
          'docstring for the roles). Step times (ms) are the statistic named above each table; the ratios to '
          'the folded (same-width, plain dense) model are the median over rounds of the ratio within a round, '
          'where the two models run back to back. A CPU shared with other work is noisy (single rounds vary by '
          'several per cent), so read the ratios, and prefer the runs with more rounds.\n')
    for path in paths:
        print(table(path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
