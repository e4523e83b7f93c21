"""The `arena` command line: help, `arena games`, `arena watch`, clear errors."""

import subprocess
import sys
from pathlib import Path

from PIL import Image

from arena.cli import main


def test_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: arena" in out and "games" in out and "watch" in out


def test_python_dash_m_arena_help():
    r = subprocess.run([sys.executable, "-m", "arena", "--help"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0 and "usage: arena" in r.stdout


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage: arena" in capsys.readouterr().err


def test_games_lists_moba_and_memory(capsys):
    assert main(["games"]) == 0
    out = capsys.readouterr().out
    assert "moba:" in out and "memory:" in out
    assert "radiant: radiant_0, radiant_1, radiant_2" in out
    assert "dire: dire_0, dire_1, dire_2" in out
    assert "observation space: Dict(" in out and "action space: Discrete(" in out


def test_watch_writes_gif(tmp_path: Path, capsys):
    out = tmp_path / "tmp.gif"
    code = main(["watch", "random", "passive", "--out", str(out), "--max-ticks", "60",
                 "--view", "radiant", "--every", "3", "--fps", "20"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "result:" in captured.out and "net worth:" in captured.out
    assert "ticks/s" in captured.err  # progress
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == 21  # ticks 0, 3, ..., 60
        assert im.size == (384, 384)


def test_unknown_bot_is_exit_2_with_the_valid_names(tmp_path: Path):
    out = tmp_path / "x.gif"
    r = subprocess.run([sys.executable, "-m", "arena", "watch", "random", "nosuchbot",
                        "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert "unknown bot 'nosuchbot'" in r.stderr and "random" in r.stderr
    assert "pusher" in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not out.exists()


def test_bad_settings_are_usage_errors(tmp_path: Path, capsys):
    out = str(tmp_path / "x.gif")
    assert main(["watch", "random", "random", "--out", out, "--team-size", "9"]) == 2
    err = capsys.readouterr().err
    assert "team_size" in err and "Traceback" not in err
    assert main(["watch", "random", "random", "--out", out, "--every", "0"]) == 2
    assert main(["watch", "random", "random", "--out", out, "--view", "blue"]) == 2
    assert main(["watch", "random", "random"]) == 2  # --out missing
    assert not Path(out).exists()
