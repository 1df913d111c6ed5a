"""A throwaway MariaDB server per dump, run in the sandbox, its time and disk use bounded."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from vpsfleet_agents.verify.sandbox import Sandbox, disk_use, program

MIB = 1 << 20


class ScratchMariaDB:
    """A throwaway mariadbd for one dump: a datadir in a fresh folder of the scratch dir, its own
    socket, no networking, no plugins, no file import/export, no symbolic links, run by the
    sandbox's account. Its disk use and the load's time are bounded by `load`."""

    def __init__(self, base: Path, sandbox: Sandbox, work: Path) -> None:
        self.sandbox = sandbox
        self.base = base
        self.datadir = base / "data"
        self.socket = base / "mysqld.sock"
        self.nothing = base / "nothing"  # root's, empty: plugin dir and secure_file_priv
        self.tmp = base / "tmp"
        self.work = work
        self.proc: subprocess.Popen[bytes] | None = None

    def client(self) -> list[str]:
        return self.sandbox.wrap(
            [program("mariadb"), "--no-defaults", f"--user={self.sandbox.user}", f"--socket={self.socket}",
             "--sandbox", "--binary-mode", "--local-infile=0", "--batch", "--default-character-set=utf8mb4"]
        )  # fmt: skip

    def start(self) -> None:
        os.chown(self.base, self.sandbox.uid, self.sandbox.gid)
        self.nothing.mkdir()
        os.chmod(self.nothing, 0o755)
        self.tmp.mkdir(mode=0o700)
        os.chown(self.tmp, self.sandbox.uid, self.sandbox.gid)
        install = subprocess.run(
            self.sandbox.wrap(
                [program("mariadb-install-db"), "--no-defaults", f"--datadir={self.datadir}",
                 f"--user={self.sandbox.user}", "--auth-root-authentication-method=socket", "--skip-test-db"]
            ),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if install.returncode != 0:
            raise RuntimeError(f"mariadb-install-db: {install.stderr.strip()[-300:]}")
        self.proc = subprocess.Popen(
            self.sandbox.wrap(
                [program("mariadbd"), "--no-defaults", f"--datadir={self.datadir}", f"--socket={self.socket}",
                 "--skip-networking", f"--pid-file={self.base}/mariadbd.pid",
                 f"--log-error={self.base}/error.log",
                 "--innodb-buffer-pool-size=64M", "--innodb-log-file-size=32M", "--skip-log-bin",
                 "--event-scheduler=OFF", "--max-allowed-packet=1G", f"--plugin-dir={self.nothing}",
                 f"--secure-file-priv={self.nothing}", "--local-infile=0", "--skip-symbolic-links",
                 f"--tmpdir={self.tmp}"]
            ),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(600):
            ping = subprocess.run([*self.client(), "--execute=SELECT 1"], capture_output=True, check=False)
            if ping.returncode == 0:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.1)
        raise RuntimeError(f"scratch mariadbd did not start: {self.log_tail()}")

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return " | ".join((self.base / "error.log").read_text(errors="replace").splitlines()[-3:])
        return ""

    def sql(self, statement: str) -> str | None:
        run = subprocess.run([*self.client(), f"--execute={statement}"], capture_output=True, check=False)
        return None if run.returncode == 0 else run.stderr.decode(errors="replace").strip()[-300:]

    def load(
        self, dump: Path, unpack: list[str], database: str, max_bytes: int, timeout: float
    ) -> str | None:
        """`unpack < dump | client database`, both exit codes checked; stopped when it takes
        longer than `timeout` seconds or the scratch folder grows beyond `max_bytes`."""
        failed = self.sql(f"CREATE DATABASE `{database}`")
        if failed:
            return f"scratch database: {failed}"
        errors = [self.work / "unpack.err", self.work / "client.err"]
        with open(dump, "rb") as source, open(errors[0], "wb") as err_one, open(errors[1], "wb") as err_two:
            one = subprocess.Popen(
                self.sandbox.wrap(unpack), stdin=source, stdout=subprocess.PIPE, stderr=err_one
            )
            assert one.stdout is not None
            two = subprocess.Popen([*self.client(), database], stdin=one.stdout, stdout=subprocess.DEVNULL,
                                   stderr=err_two)  # fmt: skip
            one.stdout.close()
            stopped = watch([one, two], self.base, max_bytes, timeout)
            code_one, code_two = one.wait(), two.wait()
        if stopped:
            self.stop()
            return stopped
        if code_one == 0 and code_two == 0:
            return None
        text = " | ".join(p.read_text(errors="replace").strip() for p in errors if p.stat().st_size)
        return f"exit {code_one}/{code_two}: {text[-300:]}"

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def watch(procs: list[subprocess.Popen[bytes]], folder: Path, max_bytes: int, timeout: float) -> str | None:
    """Waits for the last of `procs`; kills them all when `timeout` passes or `folder` grows
    beyond `max_bytes`, and says why."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            procs[-1].wait(timeout=0.5)
            return None
        except subprocess.TimeoutExpired:
            pass
        why = None
        if time.monotonic() > deadline:
            why = f"stopped after {timeout:.0f} s (--load-timeout)"
        elif disk_use(folder) > max_bytes:
            why = f"stopped: the scratch database grew beyond {max_bytes // MIB} MiB (--scratch-factor)"
        if why:
            for proc in procs:
                with contextlib.suppress(OSError):
                    proc.kill()
            return why


@contextlib.contextmanager
def scratch_mariadb(scratch_dir: Path, sandbox: Sandbox, work: Path) -> Iterator[ScratchMariaDB]:
    base = Path(tempfile.mkdtemp(prefix="scratch-db.", dir=scratch_dir))
    server = ScratchMariaDB(base, sandbox, work)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
