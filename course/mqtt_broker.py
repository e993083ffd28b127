"""A real Eclipse Mosquitto broker for the labs, the tests and the benchmark: never our own.

Each :class:`Mosquitto` is a separate ``mosquitto`` process on 127.0.0.1, on a free port, with
its own configuration file and its own persistence directory (a temporary one unless given),
so that a notebook can start several, one after another or side by side, and a test can stop a
broker and start it again *on the same port with the same persistence* to see what survives a
broker restart. Where mosquitto is not installed, :func:`mosquitto_unavailable_reason` says so,
and a lab falls back to recorded results.
"""

from __future__ import annotations

import contextlib
import getpass
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
from pathlib import Path

from vitalsim.waiting import wait_until_blocking

INSTALL_HINT = "install it with: apt-get install mosquitto"
#: the hospital view's user on a broker with accounts; a station's is station_user(ward)
VIEW_USER = "hospital-view"


def station_user(ward: str) -> str:
    return f"station-{ward}"


def mosquitto_path() -> str | None:
    """The mosquitto executable (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if Path(candidate).is_file():
            return candidate
    return None


def mosquitto_unavailable_reason() -> str | None:
    """Why no broker can be started here, or None when one can."""
    if mosquitto_path() is None:
        return f"the mosquitto broker is not installed ({INSTALL_HINT})"
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A port the kernel just handed out and took back: mosquitto takes no port 0, so the
    broker is given one that was free a moment ago (:meth:`Mosquitto.start` retries if it
    was taken in between)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _listening(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.2):
        return True
    return False


class Mosquitto:
    """``with Mosquitto() as broker:`` ... ``broker.port``; or ``start()`` / ``stop()``.

    ``persistence=True`` keeps retained messages, persistent sessions and their queued QoS 1
    and 2 messages in ``directory/mosquitto.db``, written when the broker stops cleanly
    (SIGTERM), so that :meth:`restart` shows what a broker with persistence keeps."""

    def __init__(self, *, port: int = 0, directory: str | Path | None = None,
                 persistence: bool = True, host: str = "127.0.0.1",
                 max_queued_messages: int = 100_000,
                 wards: tuple[str, ...] | None = None) -> None:
        self.host, self.port, self.persistence = host, port, persistence
        # wards given: no anonymous clients, a password each, and an ACL (see acl_text)
        self.wards = wards
        self.passwords: dict[str, str] = {}
        if wards is not None:
            self.passwords = {VIEW_USER: secrets.token_urlsafe(12),
                              **{station_user(w): secrets.token_urlsafe(12) for w in wards}}
        self.max_queued_messages = max_queued_messages
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        if directory is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="mosquitto-")
            directory = self._tmp.name
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """``HOST:PORT``, as ``python -m server --mqtt`` takes it."""
        return f"{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.directory / "mosquitto.log"

    def config_text(self) -> str:
        lines = [
            f"listener {self.port} {self.host}",
            *(["allow_anonymous true"] if self.wards is None else [
                "allow_anonymous false",
                # started as root, mosquitto becomes user "mosquitto" before it reads the
                # password file (ours, mode 600): stay who started it (no effect for others)
                f"user {getpass.getuser()}",
                f"password_file {self.directory / 'passwords'}",
                f"acl_file {self.directory / 'acl'}"]),
            f"persistence {'true' if self.persistence else 'false'}",
            f"persistence_location {self.directory}/",
            "persistence_file mosquitto.db",
            "autosave_interval 0",  # written at a clean stop, not on a timer
            f"max_queued_messages {self.max_queued_messages}",
            "max_inflight_messages 20",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "connection_messages true",
        ]
        return "\n".join(lines) + "\n"

    def start(self, timeout: float = 10.0) -> Mosquitto:
        """Start the broker and wait until it accepts connections."""
        if self.process is not None:
            raise RuntimeError("this broker is already running")
        executable = mosquitto_path()
        if executable is None:
            raise FileNotFoundError(f"the mosquitto broker is not installed ({INSTALL_HINT})")
        fixed = self.port != 0
        for _attempt in range(1 if fixed else 5):
            if not fixed:
                self.port = free_port(self.host)
            config = self.directory / "mosquitto.conf"
            config.write_text(self.config_text())
            if self.wards is not None:
                self._write_accounts()
            log = self.log_path.open("ab")
            self.process = subprocess.Popen([executable, "-c", str(config)],
                                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
            log.close()
            try:
                wait_until_blocking(lambda: self.process.poll() is not None  # type: ignore[union-attr]
                                    or _listening(self.host, self.port),
                                    timeout=timeout, interval=0.02,
                                    what=f"mosquitto to listen on {self.address}")
            except TimeoutError:
                self.stop()
                raise
            if self.process.poll() is None:
                return self
            self.process = None
            if fixed:
                break
            self.port = 0
        raise RuntimeError(f"mosquitto did not start on {self.host}:{self.port}: "
                           f"{self.log_tail()}")

    def acl_text(self) -> str:
        """Each ward's station may publish only under its own ward (and read nothing); the
        hospital view may only read. Anything else is refused by the broker: a publish is
        dropped (MQTT 3.1.1 has no way to say so), a subscription gets no messages."""
        lines = []
        for ward in self.wards or ():
            lines += [f"user {station_user(ward)}", f"topic write hospital/{ward}/#", ""]
        lines += [f"user {VIEW_USER}", "topic read hospital/#", ""]
        return "\n".join(lines)

    def _write_accounts(self) -> None:
        passwords = self.directory / "passwords"
        passwords.write_text("".join(f"{u}:{p}\n" for u, p in self.passwords.items()))
        passwords.chmod(0o600)
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        subprocess.run([tool, "-U", str(passwords)], check=True, capture_output=True)
        (self.directory / "acl").write_text(self.acl_text())

    def log_tail(self, lines: int = 5) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 10.0) -> None:
        """Stop cleanly (SIGTERM: mosquitto writes its persistence file first)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Stop abruptly (SIGKILL), as a crash would: nothing is written."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def restart(self) -> Mosquitto:
        """Stop cleanly and start again on the same port, with the same persistence."""
        self.stop()
        return self.start()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        """Stop, and remove the temporary directory if this object made it."""
        self.stop()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


