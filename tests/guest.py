"""A second kernel for the tests: Debian 12's stock Linux 6.1 booted under QEMU.

This machine's kernel has no kprobes, and its ``/dev/kvm`` (``kvm_pvm``) boots only
specially patched guests, so the kprobe paths are tested in a stock Debian kernel
emulated by QEMU's TCG: ``linux-image-6.1.0-*-amd64`` from the Debian archive (through
``apt-get download``), extracted into ``~/.cache/bpfkit/guest`` (``$BPFKIT_GUEST_CACHE``),
never into the checkout.  The guest mounts the host's root filesystem read-only over 9p
under a tmpfs overlay, so it sees the checkout, its ``.venv`` and the toolchains; a
busybox initramfs (Debian's ``busybox-static``) loads the 9p/overlay modules, mounts
``proc``, ``sys``, ``tracefs``, ``bpffs``, and runs one command as root in the checkout.

::

    python3 tests/guest.py -- .venv/bin/python -m pytest -q tests/kernel/test_attach.py
    python3 tests/guest.py --why-not        # why QEMU cannot run here (exit 0 if it can)
    python3 tests/guest.py --fetch          # download and extract the kernel only

:func:`run` returns the command's exit status and output; :func:`unavailable` says why
the guest cannot run here (tests skip through ``tests/probes.py``'s ``guest`` probe).
"""

from __future__ import annotations

import argparse
import functools
import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "linux-image-amd64"  # Debian's meta package; depends on linux-image-6.1.0-N-amd64
BUSYBOX = Path("/bin/busybox")  # busybox-static
QEMU = "qemu-system-x86_64"
# The modules the initramfs loads (their dependencies come from each module's modinfo).
MODULES = ("virtio_pci", "9pnet_virtio", "9p", "overlay")
EXIT_MARK = "bpfkit-guest-exit-status="


def cache_dir() -> Path:
    base = os.environ.get("BPFKIT_GUEST_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "bpfkit", "guest"
    )
    return Path(base)


@dataclass(frozen=True)
class Kernel:
    release: str  # e.g. 6.1.0-57-amd64
    vmlinuz: Path
    modules: Path  # lib/modules/RELEASE


def _package_name() -> str:
    """The versioned image package the meta package depends on (linux-image-6.1.0-N-amd64)."""
    out = subprocess.run(
        ["apt-cache", "depends", PACKAGE], capture_output=True, text=True, check=False
    )
    for line in out.stdout.splitlines():
        dep = line.strip().removeprefix("Depends:").strip()
        if line.strip().startswith("Depends:") and dep.startswith("linux-image-"):
            return dep
    raise RuntimeError(f"apt-cache depends {PACKAGE} names no linux-image package: {out.stderr}")


def fetch_kernel() -> Kernel:
    """The cached Debian kernel, downloaded and extracted on first use."""
    cache = cache_dir()
    found = sorted(glob.glob(str(cache / "x" / "boot" / "vmlinuz-*")))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        pkg = _package_name()
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            subprocess.run(
                ["apt-get", "download", "-q", pkg], cwd=tmp, check=True, capture_output=True
            )
            (deb,) = glob.glob(os.path.join(tmp, "*.deb"))
            part = Path(tmp) / "x"
            subprocess.run(["dpkg-deb", "-x", deb, str(part)], check=True)
            # Keep the kernel and the few module directories the initramfs needs.
            for d in (part / "lib" / "modules").iterdir():
                for sub in ("kernel/sound", "kernel/drivers/gpu", "kernel/drivers/net"):
                    shutil.rmtree(d / sub, ignore_errors=True)
            os.replace(part, cache / "x")
        found = sorted(glob.glob(str(cache / "x" / "boot" / "vmlinuz-*")))
    vmlinuz = Path(found[-1])
    release = vmlinuz.name.removeprefix("vmlinuz-")
    return Kernel(release, vmlinuz, cache / "x" / "lib" / "modules" / release)


def _modinfo_depends(ko: Path) -> list[str]:
    from elftools.elf.elffile import ELFFile

    with open(ko, "rb") as f:
        sec = ELFFile(f).get_section_by_name(".modinfo")
        data = sec.data() if sec is not None else b""
    for item in data.split(b"\0"):
        if item.startswith(b"depends="):
            return [d for d in item[8:].decode().split(",") if d]
    return []


def _module_order(kernel: Kernel) -> list[Path]:
    """The .ko files of MODULES and their dependencies, dependencies first."""
    by_name = {}
    for ko in kernel.modules.rglob("*.ko"):
        by_name[ko.stem.replace("-", "_")] = ko
    order: list[Path] = []

    def add(name: str) -> None:
        ko = by_name.get(name.replace("-", "_"))
        if ko is None or ko in order:
            return  # built in
        for dep in _modinfo_depends(ko):
            add(dep)
        order.append(ko)

    for m in MODULES:
        add(m)
    return order


_INIT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /lower /rw /root
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
for m in {modules}; do /bin/busybox insmod /mod/$m || echo "insmod $m failed"; done
/bin/busybox mount -t 9p -o trans=virtio,version=9p2000.L,ro,msize=512000,cache=loose \\
    hostroot /lower || echo "mounting the host root over 9p failed"
/bin/busybox mount -t tmpfs -o size=1g tmp /rw
/bin/busybox mkdir -p /rw/upper /rw/work
/bin/busybox mount -t overlay -o lowerdir=/lower,upperdir=/rw/upper,workdir=/rw/work \\
    overlay /root || echo "overlay mount failed"
cd /root
for d in proc sys dev tmp run; do /bin/busybox mkdir -p $d; done
/bin/busybox mount -t proc proc proc
/bin/busybox mount -t sysfs sys sys
/bin/busybox mount -t devtmpfs dev dev
/bin/busybox mkdir -p dev/pts dev/shm
/bin/busybox mount -t devpts devpts dev/pts
# /tmp stays the host's (read through the overlay, writes in its tmpfs): a checkout under
# /tmp must be visible in the guest.
/bin/busybox mount -t tmpfs tmp dev/shm
/bin/busybox mount -t tmpfs run run
/bin/busybox mount -t tracefs tracefs sys/kernel/tracing
/bin/busybox mount -t debugfs debugfs sys/kernel/debug
/bin/busybox mount -t bpf bpf sys/fs/bpf
/bin/busybox mkdir -p boot
/bin/busybox cp /config-* boot/  # as on an installed Debian: /boot/config-RELEASE
/bin/busybox hostname bpfkit-guest
/bin/busybox chroot /root /bin/sh -c {command} < /dev/console > /dev/console 2>&1
echo "{mark}$?" > /dev/console
/bin/busybox sync
/bin/busybox poweroff -f
"""


def _initramfs(kernel: Kernel, command: str, where: Path) -> Path:
    """A newc cpio with busybox, the modules and an /init that runs ``command``."""
    tree = where / "initramfs"
    (tree / "bin").mkdir(parents=True)
    (tree / "mod").mkdir()
    shutil.copy(BUSYBOX, tree / "bin" / "busybox")
    (tree / "bin" / "sh").symlink_to("busybox")
    names = []
    for ko in _module_order(kernel):
        shutil.copy(ko, tree / "mod" / ko.name)
        names.append(ko.name)
    shutil.copy(kernel.vmlinuz.parent / f"config-{kernel.release}", tree)
    init = tree / "init"
    init.write_text(
        _INIT.format(modules=" ".join(names), command=shlex.quote(command), mark=EXIT_MARK)
    )
    init.chmod(0o755)
    out = where / "initramfs.cpio"
    files = subprocess.run(
        ["find", "."], cwd=tree, capture_output=True, text=True, check=True
    ).stdout
    with open(out, "wb") as f:
        subprocess.run(
            [str(BUSYBOX), "cpio", "-o", "-H", "newc"],
            cwd=tree,
            input=files.encode(),
            stdout=f,
            stderr=subprocess.DEVNULL,
            check=True,
        )
    return out


@functools.cache
def unavailable() -> str | None:
    """None if the guest can boot here, else why not."""
    if os.uname().machine != "x86_64":
        return f"the guest kernel is x86_64; this machine is {os.uname().machine}"
    if not shutil.which(QEMU):
        return f"{QEMU} not installed (apt-get install qemu-system-x86; scripts/setup.sh does)"
    if not BUSYBOX.exists():
        return f"{BUSYBOX} missing (apt-get install busybox-static; scripts/setup.sh does)"
    if os.geteuid() != 0:
        return "not root (the guest shares / over 9p and runs its command as root)"
    if not glob.glob(str(cache_dir() / "x" / "boot" / "vmlinuz-*")):
        if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
            return "apt-get / dpkg-deb not installed (needed to fetch the Debian kernel)"
        try:
            _package_name()
        except RuntimeError as e:
            return f"cannot find Debian's kernel package: {e} (run apt-get update)"
    return None


@dataclass(frozen=True)
class Result:
    status: int  # the command's exit status (or 125 if the guest never reported one)
    output: str  # everything the command printed (stdout and stderr, through the console)
    release: str


def run(
    command: str | list[str],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    memory_mb: int = 1536,
    cpus: int = int(os.environ.get("BPFKIT_GUEST_CPUS", "2")),
    echo: bool = False,
) -> Result:
    """Boot the guest, run ``command`` (a shell string or an argv) in ``cwd`` as root, and
    return its status and output.  ``echo`` copies the output to this process's stdout."""
    why = unavailable()
    if why:
        raise RuntimeError(f"the guest cannot run here: {why}")
    kernel = fetch_kernel()
    argv = command if isinstance(command, str) else shlex.join(command)
    exports = "".join(
        f"export {k}={shlex.quote(v)}; " for k, v in {"HOME": "/root", **(env or {})}.items()
    )
    path = "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; "
    script = f"{path}{exports}cd {shlex.quote(str(cwd))} || exit 125\n{argv}"
    with tempfile.TemporaryDirectory(prefix="bpfkit-guest-") as tmp:
        initrd = _initramfs(kernel, script, Path(tmp))
        qemu = [
            QEMU,
            "-accel", "tcg,thread=multi",
            "-cpu", "max",
            "-smp", str(cpus),
            "-m", str(memory_mb),
            "-nodefaults", "-no-reboot", "-display", "none",
            "-serial", "stdio",
            "-kernel", str(kernel.vmlinuz),
            "-initrd", str(initrd),
            "-append", "console=ttyS0 quiet loglevel=1 panic=-1 oops=panic rdinit=/init",
            "-virtfs",
            "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
        ]  # fmt: skip
        proc = subprocess.Popen(
            qemu, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        assert proc.stdout is not None
        lines: list[str] = []
        status = 125
        try:
            for raw in proc.stdout:
                line = raw.decode("utf-8", "replace").replace("\r", "")
                if line.startswith(EXIT_MARK):
                    status = int(line[len(EXIT_MARK) :].strip() or 125)
                    echo = False  # what follows is the guest powering off
                    continue
                lines.append(line)
                if echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
        finally:
            proc.stdout.close()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return Result(status, "".join(lines), kernel.release)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--why-not", action="store_true", help="say why the guest cannot run here")
    ap.add_argument("--fetch", action="store_true", help="download the kernel, run nothing")
    ap.add_argument("command", nargs=argparse.REMAINDER, help="the command to run (after --)")
    args = ap.parse_args()
    why = unavailable()
    if args.why_not:
        print(why or "the guest can run here")
        return 0 if why is None else 1
    if why:
        print(f"guest.py: {why}", file=sys.stderr)
        return 77
    if args.fetch:
        print(f"guest kernel: {fetch_kernel().vmlinuz}")
        return 0
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    command: str | list[str] = cmd[0] if len(cmd) == 1 else cmd  # one word: a shell line
    return run(command or ["uname", "-a"], echo=True).status


if __name__ == "__main__":
    sys.exit(main())
