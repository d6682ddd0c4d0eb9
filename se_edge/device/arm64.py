"""An arm64 board on any machine: the native runners cross-built for aarch64 and run under QEMU user mode.

    python -m se_edge.device.arm64 wheels   the aarch64 wheels of this environment's ai-edge-litert and executorch,
                                            downloaded with pip's --platform and unpacked (never installed)
    python -m se_edge.device.arm64 board    build/arm64-board: a Debian bookworm arm64 sysroot with no Python
                                            (libc6, libstdc++6, libgcc-s1 from Debian's arm64 packages), the
                                            cross-built runners and their libraries in /opt/se_edge/{bin,lib}, an
                                            ARM /proc/cpuinfo and the pinned CPU model (board.json)

`make native-runner ARCH=arm64` cross-builds the runners (build/arm64/{pte_runner,tflite_runner}); `make
arm64-board` builds the board, which `--device qemu-arm64[:CPU]` then runs (se_edge.device.qemu).

Why each part is there (each was found the hard way):
- inside QEMU user mode, /proc/cpuinfo is the host's (x86) unless the sysroot has one, and LiteRT's CPU detection
  crashes on it: the board carries an ARM cpuinfo for its CPU model;
- QEMU 7.2's default CPU model (`max`, with SME) computes wrong int8 results: the board pins a model that does not
  (cortex-a76), and every run's outputs are checked against the host reference anyway;
- the ExecuTorch Python runtime imports torch, and the registry's aarch64 torch is a CUDA build of gigabytes: a
  board runs the native runners, as a phone must.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path, PurePosixPath

from se_edge.device.transport import last_line, run_host_command
from se_edge.errors import SeEdgeError

REPO = Path(__file__).resolve().parents[2]
CROSS_DIR = REPO / "build" / "arm64"  # wheels/, site/ (unpacked), pte_runner/, tflite_runner/
BOARD_DIR = REPO / "build" / "arm64-board"
TRIPLE = "aarch64-linux-gnu"
CROSS_CXX = f"{TRIPLE}-g++"
QEMU = "qemu-aarch64-static"
# bookworm has glibc 2.36: a wheel tagged for any manylinux up to that runs there
PLATFORMS = [f"manylinux_2_{v}_aarch64" for v in range(17, 37)] + ["manylinux2014_aarch64"]
WHEELS = {"ai-edge-litert": ("ai_edge_litert/libLiteRt.so",),  # distribution: the members a runner needs
          "executorch": ("executorch/lib/", "executorch/include/", "executorch/share/")}
DEBIAN_PACKAGES = ("libc6", "libstdc++6", "libgcc-s1")  # what the runners link, as Raspberry Pi OS has them
DEBUG_AIDS = ("usr/share/gcc", "usr/share/gdb", "usr/share/doc", "usr/share/lintian")
GUEST_PREFIX = "/opt/se_edge"  # the runners in bin/, their libraries in lib/ (RUNPATH $ORIGIN/../lib)
DOWNLOAD_TIMEOUT_S = 900

# QEMU CPU models: (MIDR implementer, part, the HWCAP features QEMU 7.2 gives them, as /proc/cpuinfo lists them)
_V8 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid"
_V82 = "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp"
CPU_MODELS = {"cortex-a53": ("0x41", "0xd03", _V8), "cortex-a57": ("0x41", "0xd07", _V8),
              "cortex-a72": ("0x41", "0xd08", _V8), "cortex-a76": ("0x41", "0xd0b", _V82),
              "neoverse-n1": ("0x41", "0xd0c", _V82 + " ssbs"),
              "a64fx": ("0x46", "0x001", "fp asimd evtstrm sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm fcma dcpop sve")}
PINNED_CPU = "cortex-a76"  # Raspberry Pi 5's core; its int8 outputs under QEMU 7.2 match x86 bit for bit
WRONG_UNDER_QEMU = {"max": "QEMU 7.2's `max` model (with SME) computes wrong int8 results (0 of 64 top-1 agreement)"}


def cross_problem() -> str | None:
    """Why the runners cannot be cross-built for arm64 here (None when they can)."""
    if shutil.which("cmake") is None:
        return "cmake not found on PATH"
    if shutil.which(CROSS_CXX) is None:
        return f"{CROSS_CXX} not found (Debian's g++-aarch64-linux-gnu; `make native-runner ARCH=arm64` installs it)"
    return None


def versions() -> dict[str, str]:
    """The versions of this environment's runtimes, which the arm64 side matches."""
    out = {}
    for dist in WHEELS:
        try:
            out[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            raise SeEdgeError(f"{dist} is not installed here; the arm64 runners are built against the same "
                              f"version as this environment's (run `make install`)") from None
    return out


def fetch_wheels(cross_dir: Path = CROSS_DIR) -> Path:
    """The aarch64 wheels of this environment's runtimes, downloaded (pip --platform) and the members the runners
    need unpacked into `cross_dir`/site; returns that directory. Done once per version."""
    want = versions()
    site, stamp = cross_dir / "site", cross_dir / "site" / ".unpacked.json"
    if stamp.is_file() and json.loads(stamp.read_text()) == want:
        return site
    wheels = cross_dir / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    platforms = [a for p in PLATFORMS for a in ("--platform", p)]
    for dist, version in want.items():
        argv = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
                "--only-binary=:all:", "--python-version", "3.11", "--implementation", "cp", *platforms,
                "--dest", str(wheels), f"{dist}=={version}"]
        proc = run_host_command(argv, DOWNLOAD_TIMEOUT_S, f"downloading the aarch64 wheel of {dist}")
        if proc.returncode != 0:
            raise SeEdgeError(f"no aarch64 wheel of {dist}=={version}: {last_line(proc.stderr)}")
    if site.exists():
        shutil.rmtree(site)
    for dist, version in want.items():
        wheel = _wheel(wheels, dist, version)
        _unpack(wheel, site, WHEELS[dist])
    stamp.write_text(json.dumps(want))
    return site


def _wheel(folder: Path, dist: str, version: str) -> Path:
    stem = dist.replace("-", "_")
    found = sorted(folder.glob(f"{stem}-{version}-*aarch64.whl"))
    if not found:
        raise SeEdgeError(f"pip downloaded no aarch64 wheel of {dist}=={version} into {folder}")
    return found[-1]


def _unpack(wheel: Path, dest: Path, members: tuple[str, ...]) -> None:
    """The members of `wheel` under `members` (prefixes), each a plain relative path, into `dest`."""
    with zipfile.ZipFile(wheel) as z:
        for info in z.infolist():
            name = PurePosixPath(info.filename)
            if info.is_dir() or not any(info.filename.startswith(m) for m in members):
                continue
            if name.is_absolute() or ".." in name.parts:
                raise SeEdgeError(f"{wheel.name} holds an unsafe path {info.filename!r}")
            target = dest.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as src, open(target, "wb") as out:
                shutil.copyfileobj(src, out)


def cmake_args(site: Path, runner: str) -> list[str]:
    """CMake's arguments for `runner` cross-built against the unpacked aarch64 wheels."""
    package = (f"-DCMAKE_PREFIX_PATH={site / 'executorch'}" if runner == "pte_runner"
               else f"-DLITERT_DIR={site / 'ai_edge_litert'}")
    return ["-DCMAKE_SYSTEM_NAME=Linux", "-DCMAKE_SYSTEM_PROCESSOR=aarch64", f"-DCMAKE_CXX_COMPILER={shutil.which(CROSS_CXX)}",
            package, "-DSE_EDGE_RUNPATH=$ORIGIN;$ORIGIN/../lib"]


def libraries(site: Path, runner: str) -> list[Path]:
    """The shared libraries `runner` loads, from the unpacked wheels."""
    if runner == "tflite_runner":
        return [site / "ai_edge_litert" / "libLiteRt.so"]
    return sorted((site / "executorch" / "lib").glob("*.so"))


def stage_bundle(cross_dir: Path = CROSS_DIR) -> Path:
    """`cross_dir`/bundle: both cross-built runners and every library they load, side by side (their RUNPATH has
    $ORIGIN), ready for `--native DIR` on any arm64 Linux device (ssh) or a board's /opt/se_edge/{bin,lib}."""
    site, bundle = cross_dir / "site", cross_dir / "bundle"
    missing = [r for r in ("pte_runner", "tflite_runner") if not (cross_dir / r / r).is_file()]
    if missing:
        raise SeEdgeError(f"{', '.join(missing)} not cross-built yet: run `make native-runner ARCH=arm64`")
    if bundle.exists():
        shutil.rmtree(bundle)
    bundle.mkdir(parents=True)
    for runner in ("pte_runner", "tflite_runner"):
        shutil.copy2(cross_dir / runner / runner, bundle / runner)
        for lib in libraries(site, runner):
            shutil.copy2(lib, bundle / lib.name)
    return bundle


def cpuinfo(cpu: str, cores: int) -> str:
    """An ARM /proc/cpuinfo for QEMU model `cpu`, as Linux writes it on arm64."""
    implementer, part, features = CPU_MODELS[cpu]
    block = (f"BogoMIPS\t: 50.00\nFeatures\t: {features}\nCPU implementer\t: {implementer}\nCPU architecture: 8\n"
             f"CPU variant\t: 0x0\nCPU part\t: {part}\nCPU revision\t: 0\n")
    return "\n".join(f"processor\t: {i}\n{block}" for i in range(cores))


def check_cpu(cpu: str) -> str:
    """`cpu` if the board can run it; one line naming the valid models otherwise."""
    if cpu in WRONG_UNDER_QEMU:
        raise SeEdgeError(f"CPU model {cpu!r} is refused: {WRONG_UNDER_QEMU[cpu]}; valid: {', '.join(CPU_MODELS)}")
    if cpu not in CPU_MODELS:
        raise SeEdgeError(f"unknown CPU model {cpu!r} for qemu-arm64; valid: {', '.join(CPU_MODELS)}")
    return cpu


def pythons_in(sysroot: Path) -> list[str]:
    """Every Python interpreter or library in `sysroot` (a board without Python has none)."""
    return sorted(str(p.relative_to(sysroot)) for p in sysroot.rglob("*")
                  if p.name.startswith(("python", "libpython")) or p.suffix in (".py", ".pyc"))


def debian_packages(dest: Path) -> list[Path]:
    """Debian bookworm's arm64 packages the runners link (apt-get download; dpkg must know arm64)."""
    dest.mkdir(parents=True, exist_ok=True)
    proc = run_host_command(["dpkg", "--print-foreign-architectures"], 30, "dpkg")
    if "arm64" not in proc.stdout.split():
        raise SeEdgeError("dpkg does not know arm64: run `dpkg --add-architecture arm64 && apt-get update` "
                          "(`make arm64-board` does)")
    for old in dest.glob("*.deb"):
        old.unlink()
    proc = run_host_command(["apt-get", "download", *(f"{p}:arm64" for p in DEBIAN_PACKAGES)], DOWNLOAD_TIMEOUT_S,
                            "apt-get download", cwd=str(dest))
    if proc.returncode != 0:
        raise SeEdgeError(f"apt-get download of {', '.join(DEBIAN_PACKAGES)} for arm64 failed: {last_line(proc.stderr)}")
    return sorted(dest.glob("*.deb"))


def build_board(board: Path = BOARD_DIR, cpu: str = PINNED_CPU, cross_dir: Path = CROSS_DIR) -> dict:
    """The board: a fresh sysroot (Debian arm64 libraries, runners, cpuinfo) and board.json; returns board.json."""
    from se_edge.device.native import build
    from se_edge.io import write_json

    check_cpu(cpu)
    if shutil.which(QEMU) is None:
        raise SeEdgeError(f"{QEMU} not found (Debian's qemu-user-static; `make arm64-board` installs it)")
    if problem := cross_problem():
        raise SeEdgeError(f"cannot cross-build the runners: {problem}")
    for runner in ("pte_runner", "tflite_runner"):
        build(cross_dir / runner, runner, arch="arm64")
    bundle = stage_bundle(cross_dir)
    debs = debian_packages(board / "debs")
    sysroot = board / "sysroot"
    if sysroot.exists():
        shutil.rmtree(sysroot)
    sysroot.mkdir(parents=True)
    for deb in debs:
        proc = run_host_command(["dpkg-deb", "-x", str(deb), str(sysroot)], 300, f"unpacking {deb.name}")
        if proc.returncode != 0:
            raise SeEdgeError(f"dpkg-deb -x {deb.name} failed: {last_line(proc.stderr)}")
    for extra in DEBUG_AIDS:  # the packages' gdb pretty-printers (Python code) and docs: not what a board runs
        shutil.rmtree(sysroot / extra, ignore_errors=True)
    bin_dir, lib_dir = sysroot / GUEST_PREFIX.lstrip("/") / "bin", sysroot / GUEST_PREFIX.lstrip("/") / "lib"
    bin_dir.mkdir(parents=True)
    lib_dir.mkdir(parents=True)
    runners = ("pte_runner", "tflite_runner")
    for item in bundle.iterdir():
        shutil.copy2(item, (bin_dir if item.name in runners else lib_dir) / item.name)
    (sysroot / "proc").mkdir()
    (sysroot / "proc" / "cpuinfo").write_text(cpuinfo(cpu, os.cpu_count() or 1))
    if found := pythons_in(sysroot):
        raise SeEdgeError(f"the board's sysroot holds Python ({', '.join(found[:3])}); a board has none")
    qemu = run_host_command([QEMU, "--version"], 30, QEMU)
    info = {"cpu": cpu, "qemu": shutil.which(QEMU), "qemu_version": qemu.stdout.splitlines()[0] if qemu.stdout else "",
            "sysroot": str(sysroot), "debian": [d.name for d in debs], "runtimes": versions(),
            "runners": {r: {"path": f"{GUEST_PREFIX}/bin/{r}", "sha256": _sha256(bin_dir / r)} for r in runners},
            "python_in_sysroot": pythons_in(sysroot)}
    write_json(board / "board.json", info)
    return info


def load_board(board: Path = BOARD_DIR) -> dict:
    """board.json of a built board (SeEdgeError naming `make arm64-board` if there is none)."""
    path = board / "board.json"
    if not path.is_file():
        raise SeEdgeError(f"no arm64 board at {board}: run `make arm64-board` first")
    try:
        info = json.loads(path.read_text())
        if not isinstance(info, dict) or not isinstance(info.get("cpu"), str) or not isinstance(info.get("runners"), dict):
            raise ValueError("not a board description")
    except ValueError as e:
        raise SeEdgeError(f"{path} is not a board description ({e}); run `make arm64-board` again") from None
    info["sysroot"] = str(board / "sysroot")  # where it is now, whatever it was when built
    return info


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m se_edge.device.arm64", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("wheels", "board"))
    p.add_argument("--cpu", default=PINNED_CPU, help=f"the QEMU CPU model the board pins (default {PINNED_CPU})")
    args = p.parse_args(argv)
    try:
        if args.action == "wheels":
            print(f"aarch64 runtimes unpacked: {fetch_wheels()}")
        else:
            info = build_board(cpu=args.cpu)
            print(f"arm64 board: {info['sysroot']} (no Python), CPU {info['cpu']}, {info['qemu_version']}; "
                  f"runners {', '.join(info['runners'])}; ai-edge-litert {info['runtimes']['ai-edge-litert']}, "
                  f"executorch {info['runtimes']['executorch']}")
    except SeEdgeError as e:
        print(f"arm64: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
