"""Fixtures for the backup agent (package `vpsfleet_agents.backup`, imported by the tests; the
programs the roles install are built from it), throwaway TLS certificates, an FTPS store on
loopback (pyftpdlib in a thread, with injectable faults) and a small site."""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import fcntl
import io
import json
import os
import shutil
import subprocess
import tarfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pytest

from tests.metric_samples import samples
from vpsfleet import agent_build
from vpsfleet_agents.backup.config import Config, parse_config

REPO = Path(__file__).resolve().parents[2]
# The programs as the roles install them: zip applications built from vpsfleet_agents (fixture
# `built`), run as subprocesses where a test needs a process of its own (signals, the CLI).
AGENT_PATH = REPO / "ansible" / "roles" / "backup_agent" / "files" / "vpsfleet-backup"
FAILURE_MAIL_PATH = REPO / "ansible" / "roles" / "backup_agent" / "files" / "vpsfleet-backup-failure-mail"
VERIFIER_PATH = REPO / "ansible" / "roles" / "backup_store" / "files" / "vpsfleet-verify-backup"
PASSWORD = 's3cret, with "quotes" and \\ spaces'  # exercises the lftp script quoting
# 01:00 local time on the night of 2026-11-23: inside the backup window.
NIGHT = dt.datetime(2026, 11, 23, 1, 0).astimezone()


@pytest.fixture(scope="session")
def built() -> None:
    """Builds the shipped programs from the package's current sources (once per session)."""
    agent_build.built()
    for path in (AGENT_PATH, FAILURE_MAIL_PATH, VERIFIER_PATH):
        assert path.read_bytes().startswith(b"#!/usr/bin/python3\n"), path


def need(*tools: str) -> None:
    missing = [t for t in tools if shutil.which(t) is None]
    if missing:
        pytest.fail(f"missing tools {missing}: run scripts/setup.sh (scripts/debian-packages)")


@dataclass(frozen=True)
class Certs:
    good_cert: Path  # CN and SAN localhost / 127.0.0.1: the one the agent trusts
    good_key: Path
    wrong_cert: Path  # self-signed for another name
    wrong_key: Path


def make_cert(folder: Path, name: str, san: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
            "-addext", f"subjectAltName={san}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    need("openssl")
    folder = tmp_path_factory.mktemp("certs")
    good = make_cert(folder, "localhost", "DNS:localhost,IP:127.0.0.1")
    wrong = make_cert(folder, "wrong.example", "DNS:wrong.example")
    return Certs(good[0], good[1], wrong[0], wrong[1])


# --- pyftpdlib store with faults --------------------------------------------------------------


@dataclass
class Faults:
    kill_after_bytes: int | None = None  # close the session once an upload reached this size
    kill_times: int = 1_000_000  # how many sessions to kill
    kills: int = 0
    quota_bytes: int | None = None  # refuse writes beyond this many bytes in the home folder
    drop_after_bytes: int | None = None  # silently store only this much of each file
    stall_uploads: bool = False  # stop reading upload data: a store that hangs
    paused: threading.Event = field(default_factory=threading.Event)


class FaultyFile:
    """The file a STOR writes to, with the store's faults applied."""

    def __init__(self, inner: Any, faults: Faults, home: Path) -> None:
        self._inner = inner
        self._faults = faults
        self._home = home
        self._written = 0

    def write(self, data: bytes) -> int:
        faults = self._faults
        if faults.quota_bytes is not None:
            used = sum(p.stat().st_size for p in self._home.rglob("*") if p.is_file())
            if used + len(data) > faults.quota_bytes:
                raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
        if faults.drop_after_bytes is not None:
            room = max(0, faults.drop_after_bytes - self._written)
            data = data[:room]
        self._written += len(data)
        self._inner.write(data)
        return len(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FtpStore:
    """A pyftpdlib FTPS server (explicit TLS required on control and data) on 127.0.0.1."""

    def __init__(self, root: Path, cert: Path, key: Path, faults: Faults) -> None:
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.filesystems import AbstractedFS
        from pyftpdlib.handlers import TLS_DTPHandler, TLS_FTPHandler
        from pyftpdlib.servers import FTPServer

        self.root = root
        self.home = root / "c1" / "g1"
        self.home.mkdir(parents=True, exist_ok=True)
        self.faults = faults
        home = self.home

        class FaultyFS(AbstractedFS):  # type: ignore[misc]
            def open(self, filename: str, mode: str) -> Any:
                if faults.quota_bytes is not None and "w" in mode:
                    # A full quota refuses the STOR, as ProFTPD's mod_quotatab does.
                    used = sum(p.stat().st_size for p in home.rglob("*") if p.is_file())
                    if used >= faults.quota_bytes:
                        raise OSError(errno.EDQUOT, os.strerror(errno.EDQUOT))
                handle = super().open(filename, mode)
                return FaultyFile(handle, faults, home) if "w" in mode or "a" in mode else handle

        class KillingDTP(TLS_DTPHandler):  # type: ignore[misc]
            def handle_read_event(self) -> None:  # what the I/O loop calls
                if faults.stall_uploads and self.receive and self.tot_bytes_received > 0:
                    time.sleep(0.01)  # leave the data unread; do not spin the loop
                    return
                limit = faults.kill_after_bytes
                if (
                    limit is not None
                    and self.receive  # an upload, not a listing
                    and faults.kills < faults.kill_times
                    and self.tot_bytes_received >= limit
                ):
                    # Before reading more: with a limit of 0 no attempt makes progress.
                    faults.kills += 1
                    self.cmd_channel.close()
                    return
                super().handle_read_event()

        authorizer = DummyAuthorizer()
        authorizer.add_user("g1", PASSWORD, str(self.home), perm="elradfmwMT")

        class Handler(TLS_FTPHandler):  # type: ignore[misc]
            pass

        Handler.authorizer = authorizer
        Handler.certfile = str(cert)
        Handler.keyfile = str(key)
        Handler.tls_control_required = True
        Handler.tls_data_required = True
        Handler.abstracted_fs = FaultyFS
        Handler.dtp_handler = KillingDTP
        Handler.banner = "test store ready"
        Handler.auth_failed_timeout = 0.1  # pyftpdlib delays a 530 by 3 s: as long as our timeout
        self._server_class = FTPServer
        self._handler = Handler
        self.port = 0
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def start(self) -> None:
        server = self._server_class(("127.0.0.1", self.port), self._handler)
        self.port = server.address[1]
        self._stop.clear()

        def serve() -> None:
            while not self._stop.is_set():
                server.serve_forever(timeout=0.05, blocking=False)
            server.close_all()

        self._thread = threading.Thread(target=serve, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def sets(self) -> list[str]:
        return sorted(p.name for p in self.home.iterdir())


@pytest.fixture
def store(tmp_path: Path, certs: Certs) -> Iterator[FtpStore]:
    server = FtpStore(tmp_path / "store", certs.good_cert, certs.good_key, Faults())
    server.start()
    yield server
    server.stop()


# --- the guest side ---------------------------------------------------------------------------


@pytest.fixture
def site(tmp_path: Path) -> Path:
    """A small /data/www: text, an incompressible file, nested folders, a symlink."""
    www = tmp_path / "guest" / "data" / "www"
    (www / "shop" / "assets").mkdir(parents=True)
    (www / "shop" / "index.php").write_text("<?php echo 'bonjour'; ?>\n" * 200)
    (www / "shop" / "assets" / "logo.bin").write_bytes(os.urandom(300_000))
    (www / "blog").mkdir()
    (www / "blog" / "post.html").write_text("<p>été</p>\n")
    (www / "current").symlink_to("shop")
    return www


# The suffix of set files under the fleet's default compression (zstd); `.gz` for an offer that
# keeps gzip and for the older sets the store and the verifier still accept.
DEFAULT_EXT = ".zst"


def pack(data: bytes, name: str) -> bytes:
    """`data` compressed the way the set file `name` says (`.zst` or `.gz`), with the CLI tools
    a customer uses (Python 3.11's standard library has no zstd)."""
    command = ["zstd", "-q", "-c"] if name.endswith(".zst") else ["gzip", "-c"]
    return subprocess.run(command, input=data, capture_output=True, check=True).stdout


def unpack(path: Path) -> bytes:
    """The set file at `path` decompressed by the tool its suffix names (`zstd -dc`, `gunzip -c`)."""
    command = ["zstd", "-q", "-dc"] if path.name.endswith(".zst") else ["gunzip", "-c"]
    return subprocess.run([*command, str(path)], capture_output=True, check=True).stdout


def open_archive(path: Path) -> tarfile.TarFile:
    """A set's `www.tar.zst` / `www.tar.gz` as a TarFile, decompressed by `unpack`."""
    return tarfile.open(fileobj=io.BytesIO(unpack(path)))


def write_exec(path: Path, text: str) -> Path:
    path.write_text(text)
    path.chmod(0o755)
    return path


class StoreLike(Protocol):
    port: int


def make_config(
    tmp_path: Path,
    store: StoreLike,
    certs: Certs,
    site: Path,
    store_settings: dict[str, Any] | None = None,
    **overrides: Any,
) -> Config:
    """A Config for the agent against `store`, with short timeouts so faults fail fast;
    `store_settings` override the `store` section, `overrides` the top level."""
    secrets = tmp_path / "secrets"
    secrets.mkdir(exist_ok=True, mode=0o700)
    password_file = secrets / "store.password"
    password_file.write_text(overrides.pop("password", PASSWORD) + "\n")
    password_file.chmod(0o600)
    store_data: dict[str, Any] = {
        "host": "localhost",
        "port": store.port,
        "user": "g1",
        "password_file": str(password_file),
        "ca_file": str(certs.good_cert),
        "timeout_seconds": 3,
        "retries": 1,
        "reconnect_seconds": 1,
    }
    store_data.update(store_settings or {})
    state = tmp_path / "state"
    data: dict[str, Any] = {
        "customer": "c1",
        "guest": "g1",
        "paths": [str(site)],
        "databases": "none",
        "store": store_data,
        "deadline": None,
        "work_dir": str(tmp_path / "work"),
        "status_file": str(state / "status.json"),
        "textfile": str(state / "textfile" / "vpsfleet_backup.prom"),
        "lock_file": str(state / "lock"),
        "restore_dir": str(state / "restore"),
        "replaced_dir": str(state / "replaced"),
    }
    data.update(overrides)
    (tmp_path / "config.json").write_text(json.dumps(data))
    return parse_config(data)


def metrics(config: Any) -> dict[str, float]:
    return samples(Path(config.textfile).read_text())


def status(config: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(config.status_file).read_text())
    return data


@contextlib.contextmanager
def held_lock(path: str) -> Iterator[None]:

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


# --- ProFTPD: the store's real server ---------------------------------------------------------


def free_port_range(count: int) -> int:
    """The first of `count` consecutive loopback ports that are free now."""
    import random
    import socket

    rng = random.Random(os.getpid())
    for _ in range(50):
        first = rng.randrange(30000, 60000 - count)
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return first
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free port range on loopback")


PROFTPD_CONF = """\
ServerType standalone
DefaultServer on
ServerName "vpsfleet test store"
ServerIdent on "test store ready"
DefaultAddress 127.0.0.1
SocketBindTight on
Port {port}
PassivePorts {passive_first} {passive_last}
UseIPv6 off
UseReverseDNS off
User nobody
Group nogroup
MaxInstances 30
PidFile {run}/proftpd.pid
ScoreboardFile {run}/proftpd.scoreboard
DelayTable none
DelayEngine off
WtmpLog off
SystemLog {run}/system.log
TransferLog {run}/xfer.log
AuthOrder mod_auth_file.c
AuthUserFile {run}/ftpd.passwd
AuthGroupFile {run}/ftpd.group
RequireValidShell off
DefaultRoot ~
Umask 027 027
AllowOverwrite on
# Uploads land under a hidden name and are renamed when complete; aborted ones are deleted.
HiddenStores on
DeleteAbortedStores on
ModulePath /usr/lib/proftpd
LoadModule mod_tls.c
LoadModule mod_digest.c
TLSEngine on
TLSLog {run}/tls.log
TLSProtocol TLSv1.2 TLSv1.3
TLSRequired on
TLSRSACertificateFile {cert}
TLSRSACertificateKeyFile {key}
TLSVerifyClient off
TLSRenegotiate none
DigestEngine on
DigestAlgorithms sha256
"""


class ProftpdStore:
    """A private ProFTPD on loopback: explicit TLS required, `DefaultRoot ~`, HiddenStores,
    server-side SHA-256 (mod_digest), one virtual write account for guest g1 of customer c1."""

    def __init__(self, base: Path, cert: Path, key: Path) -> None:
        self.base = base
        self.run_dir = base / "run"
        self.root = base / "srv"
        self.home = self.root / "c1" / "g1"
        self.run_dir.mkdir(parents=True)
        self.home.mkdir(parents=True)
        self.port = free_port_range(21)
        self.proc: subprocess.Popen[bytes] | None = None
        nobody = 65534
        for folder in (self.root, self.root / "c1", self.home):
            os.chown(folder, nobody, nobody)
        base.chmod(0o755)
        hashed = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"], input=PASSWORD.encode(),
            capture_output=True, check=True,
        ).stdout.decode().strip()  # fmt: skip
        passwd = self.run_dir / "ftpd.passwd"
        passwd.write_text(f"g1:{hashed}:{nobody}:{nobody}::{self.home}:/bin/false\n")
        (self.run_dir / "ftpd.group").write_text(f"nogroup:x:{nobody}:\n")
        for name in ("ftpd.passwd", "ftpd.group"):
            (self.run_dir / name).chmod(0o600)
        (self.run_dir / "proftpd.conf").write_text(
            PROFTPD_CONF.format(
                port=self.port, passive_first=self.port + 1, passive_last=self.port + 20,
                run=self.run_dir, cert=cert, key=key,
            )
        )  # fmt: skip

    def start(self) -> None:
        import socket
        import time

        conf = self.run_dir / "proftpd.conf"
        check = subprocess.run(["proftpd", "-t", "-c", str(conf)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self.proc = subprocess.Popen(
            ["proftpd", "-n", "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=open(self.run_dir / "stderr.log", "wb"),  # noqa: SIM115
        )
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"proftpd did not start: {(self.run_dir / 'stderr.log').read_text()}")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def sets(self) -> list[str]:
        return sorted(p.name for p in self.home.iterdir())


@pytest.fixture
def proftpd(certs: Certs) -> Iterator[ProftpdStore]:
    need("proftpd", "openssl")
    import tempfile

    # Not under pytest's 0700 temp folder: the virtual user (nobody) must reach its home.
    base = Path(tempfile.mkdtemp(prefix="vpsfleet-proftpd-", dir="/var/tmp"))
    server = ProftpdStore(base, certs.good_cert, certs.good_key)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


# --- MariaDB: a private server in a temp datadir ----------------------------------------------

BACKUP_USER_PASSWORD = "dump-only-secret"
SHOP_SQL = """
CREATE DATABASE shop;
CREATE DATABASE wiki;
USE shop;
CREATE TABLE product (id INT PRIMARY KEY, name VARCHAR(50), price DECIMAL(8,2), photo BLOB);
INSERT INTO product VALUES (1, 'café', 3.50, UNHEX('00FF10')), (2, 'thé', 2.10, NULL);
CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, product INT);
CREATE TRIGGER product_audit AFTER INSERT ON product FOR EACH ROW
  INSERT INTO audit (product) VALUES (NEW.id);
CREATE VIEW cheap AS SELECT name FROM product WHERE price < 3;
CREATE EVENT nightly ON SCHEDULE EVERY 1 DAY DO DELETE FROM audit;
CREATE PROCEDURE count_products() SELECT COUNT(*) FROM product;
USE wiki;
CREATE TABLE page (title VARCHAR(50));
INSERT INTO page VALUES ('Accueil');
CREATE USER 'vpsfleet_backup'@'localhost' IDENTIFIED BY '{password}';
GRANT SELECT, SHOW VIEW, TRIGGER, EVENT ON *.* TO 'vpsfleet_backup'@'localhost';
"""


class MariaDB:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.datadir = base / "data"
        self.socket = base / "mysqld.sock"
        self.proc: subprocess.Popen[bytes] | None = None
        self.backup_defaults = base / "backup.cnf"  # what the role writes, root-only
        self.backup_defaults.write_text(
            f"[client]\nuser=vpsfleet_backup\npassword={BACKUP_USER_PASSWORD}\nsocket={self.socket}\n"
        )
        self.backup_defaults.chmod(0o600)
        self.root_defaults = base / "root.cnf"
        self.root_defaults.write_text(f"[client]\nuser=root\nsocket={self.socket}\n")

    def install(self) -> None:
        subprocess.run(
            [
                "mariadb-install-db", "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                "--auth-root-authentication-method=socket", "--skip-test-db",
            ],
            check=True, capture_output=True,
        )  # fmt: skip

    def start(self) -> None:
        import time

        self.proc = subprocess.Popen(
            [
                "mariadbd", "--no-defaults", f"--datadir={self.datadir}", "--user=root",
                f"--socket={self.socket}", "--skip-networking", f"--pid-file={self.base}/pid",
                f"--log-error={self.base}/error.log", "--innodb-buffer-pool-size=16M",
                "--skip-log-bin", "--event-scheduler=OFF",
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(200):
            ping = subprocess.run(
                ["mariadb-admin", f"--defaults-extra-file={self.root_defaults}", "ping"],
                capture_output=True,
            )
            if ping.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"mariadbd did not start: {(self.base / 'error.log').read_text()}")

    def sql(self, statements: str, database: str = "") -> str:
        out = subprocess.run(
            ["mariadb", f"--defaults-extra-file={self.root_defaults}", "--batch",
             "--skip-column-names", *([database] if database else [])],
            input=statements.encode(), capture_output=True, check=True,
        )  # fmt: skip
        return out.stdout.decode()

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=60)
            self.proc = None


@pytest.fixture(scope="module")
def mariadb() -> Iterator[MariaDB]:
    need("mariadbd", "mariadb-install-db", "mariadb", "mariadb-dump")
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="vpsfleet-mariadb-", dir="/var/tmp"))
    server = MariaDB(base)
    server.install()
    server.start()
    server.sql(SHOP_SQL.format(password=BACKUP_USER_PASSWORD))
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


# --- pure-ftpd: a second real server ----------------------------------------------------------

# Debian 12's pure-ftpd conflicts with proftpd-core (both provide ftp-server): setup unpacks its
# package here instead of installing it (scripts/setup.d/50-backup.sh).
PUREFTPD_UNPACKED = Path("/opt/vpsfleet/pure-ftpd")


def pure_ftpd_binaries() -> tuple[str, str] | None:
    for root in (Path("/"), PUREFTPD_UNPACKED):
        daemon, pw = root / "usr/sbin/pure-ftpd", root / "usr/bin/pure-pw"
        if daemon.exists() and pw.exists():
            return str(daemon), str(pw)
    return None


class PureFtpdStore:
    """A private pure-ftpd on loopback: TLS required (-Y 2), chroot (-A), virtual user g1 in a
    PureDB with a quota of `max_files` files (and 1000 MB: a size of 0 means 0, not unlimited)."""

    def __init__(self, base: Path, cert: Path, key: Path, max_files: int) -> None:
        found = pure_ftpd_binaries()
        if found is None:
            pytest.fail("pure-ftpd missing: run scripts/setup.sh (scripts/setup.d/50-backup.sh)")
        self.daemon, self.pure_pw = found
        self.base = base
        self.run_dir = base / "run"
        self.home = base / "srv" / "c1" / "g1"
        self.run_dir.mkdir(parents=True)
        self.home.mkdir(parents=True)
        for folder in (base / "srv", base / "srv" / "c1", self.home):
            os.chown(folder, 65534, 65534)
        base.chmod(0o755)
        (self.run_dir / "cert.pem").write_bytes(cert.read_bytes() + key.read_bytes())
        (self.run_dir / "cert.pem").chmod(0o600)
        self.port = free_port_range(21)
        self.proc: subprocess.Popen[bytes] | None = None
        subprocess.run(
            [self.pure_pw, "useradd", "g1", "-u", "65534", "-g", "65534", "-d", str(self.home),
             "-f", str(self.run_dir / "pureftpd.passwd"), "-m",
             "-F", str(self.run_dir / "pureftpd.pdb"), "-n", str(max_files), "-N", "1000"],
            input=f"{PASSWORD}\n{PASSWORD}\n".encode(), check=True, capture_output=True,
        )  # fmt: skip
        # pure-pw's own hash is deliberately slow (seconds per login on a busy machine): store a
        # SHA-512 crypt instead, which pure-ftpd checks with crypt() as well.
        hashed = subprocess.run(
            ["openssl", "passwd", "-6", "-stdin"], input=PASSWORD.encode(),
            capture_output=True, check=True,
        ).stdout.decode().strip()  # fmt: skip
        passwd = self.run_dir / "pureftpd.passwd"
        fields = passwd.read_text().strip().split(":")
        fields[1] = hashed
        passwd.write_text(":".join(fields) + "\n")
        self.set_max_files(max_files)

    def set_max_files(self, count: int) -> None:
        subprocess.run(
            [self.pure_pw, "usermod", "g1", "-n", str(count), "-N", "1000", "-m",
             "-f", str(self.run_dir / "pureftpd.passwd"), "-F", str(self.run_dir / "pureftpd.pdb")],
            check=True, capture_output=True,
        )  # fmt: skip

    def start(self) -> None:
        import socket

        self.proc = subprocess.Popen(
            [self.daemon, "-S", f"127.0.0.1,{self.port}",
             "-l", f"puredb:{self.run_dir / 'pureftpd.pdb'}", "-A", "-E", "-H",
             "-Y", "2", "-2", str(self.run_dir / "cert.pem"),
             "-p", f"{self.port + 1}:{self.port + 20}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port)):
                return
            time.sleep(0.05)
        raise RuntimeError("pure-ftpd did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None

    def sets(self) -> list[str]:
        return sorted(p.name for p in self.home.iterdir() if p.name != ".ftpquota")


@pytest.fixture
def pureftpd(certs: Certs) -> Iterator[PureFtpdStore]:
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="vpsfleet-pureftpd-", dir="/var/tmp"))
    server = PureFtpdStore(base, certs.good_cert, certs.good_key, max_files=6)
    server.start()
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)
