"""The `arena` command line: help, `arena games`, `arena watch`, clear errors."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from arena.cli import main


def test_help(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: arena" in out and "games" in out and "watch" in out


def test_python_dash_m_arena_help():
    r = subprocess.run([sys.executable, "-m", "arena", "--help"], capture_output=True, text=True,
                       check=False, timeout=60)
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
    # what each game offers: turn-based or not, rendering, roles, bots with their anchors
    moba, _, _ = out.partition("\nmemory:")
    assert "turn-based: no; render: rgb_array" in moba
    assert "hero: 264 observations, 34 actions (masked)" in moba
    assert "bots: random (anchor 10), passive (anchor 20), lasthitter (anchor 30), pusher " \
           "(anchor 40)" in moba
    four = out.split("connect_four:")[1]
    assert "turn-based: yes" in four and "player_0: player_0" in four
    assert "player_0+player_1: 84 observations, 7 actions (masked)" in four
    assert "bots: random (anchor 10), connect4 (anchor 20)" in four


def test_watch_writes_gif(tmp_path: Path, capsys):
    out = tmp_path / "tmp.gif"
    code = main(["watch", "random", "passive", "--out", str(out), "--max-ticks", "60",
                 "--view", "radiant", "--every", "3", "--fps", "20"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("random (radiant) vs passive (dire): moba, seed 0, up to 60 "
                                   "steps, radiant view\n")
    assert "result: draw after 60 steps" in captured.out  # random and passive never finish
    assert "returns: radiant " in captured.out and ", dire " in captured.out
    assert "steps/s" in captured.err and "60/60 steps" in captured.err  # progress
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == 21  # ticks 0, 3, ..., 60
        assert im.size == (384, 384)


def test_unknown_bot_is_exit_2_with_the_valid_names(tmp_path: Path):
    out = tmp_path / "x.gif"
    r = subprocess.run([sys.executable, "-m", "arena", "watch", "random", "nosuchbot",
                        "--out", str(out)], capture_output=True, text=True, check=False,
                       timeout=120)
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


def test_watch_scale_32_memory_does_not_grow_with_the_match(tmp_path: Path, capsys):
    # `arena watch --scale 32` held every 12 MB frame until the match ended (~9 GB for a
    # default match); now frames stream into the GIF and TensorBoard gets a small preview
    import tracemalloc

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    tb = tmp_path / "tb"

    def peak(ticks: int) -> int:
        tracemalloc.start()
        try:
            code = main(["watch", "random", "passive", "--out", str(tmp_path / f"{ticks}.gif"),
                         "--scale", "32", "--max-ticks", str(ticks), "--tensorboard", str(tb)])
            assert code == 0, capsys.readouterr().err
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(10)  # warm the caches (the map drawn at this scale) and imports
    short, long = peak(12), peak(48)
    frame = 2048 * 2048 * 3
    assert long < short + 2 * frame, \
        f"peak {short / 1e6:.0f} MB for 7 frames but {long / 1e6:.0f} MB for 25"
    with Image.open(tmp_path / "48.gif") as im:
        assert im.n_frames == 25 and im.size == (2048, 2048)
    acc = EventAccumulator(str(tb), size_guidance={"images": 0})
    acc.Reload()
    assert all(i.width <= 384 for i in acc.Images("match/random_vs_passive"))


def test_watch_checks_the_tensorboard_logdir_before_the_match(tmp_path: Path, capsys):
    out = tmp_path / "m.gif"
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a folder")
    for logdir, message in ((a_file, "is a file"), (a_file / "tb", "cannot create the folder")):
        assert main(["watch", "random", "random", "--out", str(out),
                     "--tensorboard", str(logdir)]) == 2
        captured = capsys.readouterr()
        err = captured.err.strip()
        assert err.startswith("arena watch: error: --tensorboard") and message in err, err
        assert len(err.splitlines()) == 1
        assert "result:" not in captured.out and "steps/s" not in err  # no match was played
    assert not out.exists()


@pytest.mark.parametrize("value", ["-1", "0", "nan", "inf", "soon"])
def test_actor_timeout_must_be_a_finite_positive_number(value: str, capsys):
    assert main(["actor", "--connect", "tcp://127.0.0.1:9", "--timeout", value]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "argument --timeout" in last and "positive number of seconds" in last, last
    assert repr(value) in last


@pytest.mark.parametrize("directory", ["", "   "])
def test_keys_refuses_an_empty_dir(directory: str, tmp_path: Path, monkeypatch, capsys):
    # `arena keys ""` wrote the secret keys into the current folder
    monkeypatch.chdir(tmp_path)
    assert main(["keys", directory]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("arena keys: error: keys folder") and len(err.splitlines()) == 1, err
    assert not any(tmp_path.iterdir())


# ---- arena watch with trained players --------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One update of the default MOBA config: a checkpoint to watch."""
    from arena.config import CONFIG_DIR, load_config
    from arena.train import train

    root = tmp_path_factory.mktemp("runs")
    return train(load_config(CONFIG_DIR / "default.yaml", [
        f"run.root={root}", "run.name=tiny", "trainer.max_updates=1",
        "trainer.checkpoint_every=1", "game.num_envs=2", "eval.every=0", "watch.every=0",
        "ppo.chunks_per_update=1", "game.options.max_ticks=30"]))


def test_help_lists_tournament(capsys):
    assert main(["--help"]) == 0
    assert "tournament" in capsys.readouterr().out
    assert main(["tournament", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--bots" in out and "--workers" in out and "--games" in out


def test_watch_a_checkpoint_and_log_the_gif_to_tensorboard(tiny_run: Path, tmp_path: Path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out, tb = tmp_path / "m.gif", tmp_path / "tb"
    ckpt = tiny_run / "checkpoints" / "update-000001.ckpt"
    code = main(["watch", str(ckpt), "random", "--out", str(out), "--max-ticks", "24",
                 "--every", "4", "--tensorboard", str(tb)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "tiny/update-000001 (radiant) vs random (dire)" in captured.out
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == 7  # ticks 0, 4, ..., 24
    acc = EventAccumulator(str(tb), size_guidance={"images": 0})
    acc.Reload()
    assert acc.Tags()["images"] == ["match/tiny_update-000001_vs_random"]
    (image,) = acc.Images("match/tiny_update-000001_vs_random")
    assert image.encoded_image_string[:6] == b"GIF89a" and image.step == 1  # its update
    assert (image.width, image.height) == (384, 384)
    # a run directory plays its newest checkpoint; the game's settings come from the run
    assert main(["watch", "pusher", str(tiny_run), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "pusher (radiant) vs tiny (dire): moba, seed 0, up to 30 steps" in captured.out


def test_watch_refuses_bad_checkpoints_with_one_line(tiny_run: Path, tmp_path: Path, capsys):
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"\x00" * 64)
    out = tmp_path / "x.gif"
    cases = [([str(garbage), "random"], "not a readable checkpoint"),
             ([str(tmp_path / "missing.ckpt"), "random"], "no such checkpoint"),
             ([f"{tiny_run}@0", "random"], "no snapshot 0"),
             ([str(tiny_run), "random", "--team-size", "2"], "another team size")]
    for argv, message in cases:
        assert main(["watch", *argv, "--out", str(out)]) == 2, argv
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_watch_progress_goes_to_the_current_stderr(tmp_path: Path):
    # a program that calls arena.cli.main in-process, with stderr redirected each time
    script = textwrap.dedent(f"""
        import contextlib, io
        from arena.cli import main

        for i in range(2):
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = main(["watch", "random", "passive", "--max-ticks", "10",
                             "--out", {str(tmp_path)!r} + f"/{{i}}.gif"])
            assert code == 0, (i, err.getvalue())
            assert "steps/s" in err.getvalue(), (i, err.getvalue())
            err.close()
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       check=False, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert r.returncode == 0, r.stderr.strip().splitlines()[-1]
