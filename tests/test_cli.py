import json
import subprocess
import sys

from timm_relgraph.cli import main


def test_graph_command(capsys):
    assert main(['graph', '--c', '0.4', '--l', '2.0']) == 0
    out = capsys.readouterr().out
    for key in ('n', 'k', 'p', 'seed', 'C', 'L', 'num_edges', 'density'):
        assert any(line.split()[0] == key for line in out.splitlines()), key
    assert main(['graph', '--c', '0.4', '--l', '2.0', '--json']) == 0
    info = json.loads(capsys.readouterr().out)
    assert info['n'] == 64 and abs(info['C'] - 0.4) <= 0.02 and abs(info['L'] - 2.0) <= 0.05
    assert 0 < info['density'] < 1


def test_graph_command_errors(capsys):
    assert main(['graph', '--c', '0.2', '--l', '1.5']) == 2
    assert 'nearest reachable' in capsys.readouterr().err
    assert main(['graph', '--k', '1', '--p', '0.1']) == 2
    assert 'k must lie in' in capsys.readouterr().err


def test_catalogue_command_plot(tmp_path, capsys):
    png = tmp_path / 'cat.png'
    assert main(['catalogue', '--n', '64', '--plot', str(png)]) == 0
    assert 'n=64:' in capsys.readouterr().out
    assert png.read_bytes()[:8] == b'\x89PNG\r\n\x1a\n' and png.stat().st_size > 10_000


def test_console_script_installed():
    out = subprocess.run([sys.executable, '-m', 'timm_relgraph.cli', 'graph', '--family', 'mlp5'],
                         capture_output=True, text=True, check=True).stdout
    assert 'ws_flex' in out and '8.19' in out
