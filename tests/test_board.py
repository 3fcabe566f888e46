"""What the board says about itself (issue 32, item 4): a Jetson's model, L4T release and power
mode from the files JetPack writes (a faked root here: no Jetson is at hand), and that the timing
log and `mpox-bench` results carry them."""

from __future__ import annotations

from pathlib import Path

from device.live import board

ORIN_NANO_CONF = """
< POWER_MODEL ID=0 NAME=15W >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=1 NAME=7W >
CPU_ONLINE CORE_0 1
< POWER_MODEL ID=2 NAME=MAXN_SUPER >
< PM_CONFIG DEFAULT=0 >
"""


def jetson(root: Path, release: str, pmode: str) -> Path:
    for rel, text in (
        (board.MODEL, "NVIDIA Jetson Orin Nano Developer Kit\x00"),
        (board.TEGRA_RELEASE, release),
        (board.NVPMODEL_STATUS, pmode),
        (board.NVPMODEL_CONF, ORIN_NANO_CONF),
    ):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def test_a_jetson_says_its_model_release_and_power_mode(tmp_path):
    six = jetson(
        tmp_path / "jp6",
        "# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, EABI: aarch64\n",
        "pmode:0002 fmode:quiet\n",
    )
    assert board.facts(six) == {
        "model": "NVIDIA Jetson Orin Nano Developer Kit",
        "l4t": "36.4.3",
        "power_mode": "MAXN_SUPER (mode 2)",
    }
    five = jetson(tmp_path / "jp5", "# R35 (release), REVISION: 5.0, GCID: 1\n", "pmode:0001\n")
    assert board.l4t(five) == "35.5.0" and board.power_mode(five) == "7W (mode 1)"
    (five / board.NVPMODEL_CONF).unlink()  # no table: the number alone
    assert board.power_mode(five) == "mode 1"


def test_a_board_that_is_not_a_jetson_says_so_with_nothing(tmp_path):
    assert board.facts(tmp_path) == {"model": None, "l4t": None, "power_mode": None}
    garbled = tmp_path / "garbled"  # another root: model and release are read once per root
    (garbled / "etc").mkdir(parents=True)
    (garbled / board.TEGRA_RELEASE).write_text("garbage\n")
    assert board.l4t(garbled) is None


def test_the_timing_log_and_the_benchmark_results_carry_the_board(tmp_path):
    from benchmarks.report import machine_info
    from device.live.timing import Timing

    row = Timing(tmp_path, 10.0, 100_000, 1, False).summary(0, "running")
    assert row["board"] == board.facts()  # this VM: no device tree model, no L4T
    info = machine_info()
    assert {"board", "l4t", "power_mode"} <= set(info) and info["l4t"] == board.l4t()
