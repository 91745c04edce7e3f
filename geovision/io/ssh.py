"""SSHIO: run the project on another machine over SSH (fabric), and bring its runs back.

A remote host gets one prepared folder tree:

    <root>/code/     the pushed project (tracked and not-ignored files), replaced whole per push
    <root>/.env      the project's .env (mode 600), sourced by every command
    <root>/home/     GEOVISION_HOME of the commands run there (runs/ below it)
    <root>/logs/     <name>.log (stdout and stderr), <name>.pid, <name>.exit of each command

Security is not left to defaults: the host key must be in known_hosts (an unknown host is
rejected unless `accept_unknown_host` is set, which then records the key), authentication uses
the given key file only (no agent, no ~/.ssh key search) and no ~/.ssh/config is read.
"""

from __future__ import annotations

import io
import os
import shlex
import subprocess
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from geovision.errors import ConfigError, RemoteError
from geovision.io.atomic import atomic_file
from geovision.layout import Layout

LOG_SUFFIXES = (".log", ".exit")


@dataclass(frozen=True)
class PullReport:
    copied: list[str]
    unchanged: int

    @property
    def num_copied(self) -> int:
        return len(self.copied)


def project_files(project: Path) -> list[str]:
    """The project's files as git sees them: tracked plus untracked-but-not-ignored."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                                 "--exclude-standard"], cwd=project, capture_output=True,
                                check=True, timeout=60).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise ConfigError(f"{project} is not a git checkout ({exc}); push needs git to know "
                          "which files belong to the project") from None
    names = [n for n in listed.decode().split("\0") if n]
    return sorted(n for n in names if (project / n).is_file())


class SSHIO:
    """One remote host and its prepared folder `root` (relative paths are under the login's
    home folder)."""

    def __init__(self, host: str, *, user: str | None = None, port: int = 22,
                 key_file: str | os.PathLike | None = None,
                 known_hosts: str | os.PathLike | None = None, root: str = "geovision",
                 accept_unknown_host: bool = False, connect_timeout: float = 15,
                 command_timeout: float | None = None) -> None:
        self.host, self.user, self.port = host, user, int(port)
        self.key_file = Path(key_file).expanduser() if key_file else None
        self.known_hosts = Path(known_hosts or "~/.ssh/known_hosts").expanduser()
        self.root = root.rstrip("/") or "/"
        self.accept_unknown_host = accept_unknown_host
        self.connect_timeout = connect_timeout
        self.command_timeout = command_timeout
        self._connection = None

    def __repr__(self) -> str:
        return f"SSHIO({self.target!r}, root={self.root!r})"

    @property
    def target(self) -> str:
        return f"{self.user + '@' if self.user else ''}{self.host}:{self.port}"

    # ----- the connection -----------------------------------------------------------------
    def connection(self):
        """The open fabric Connection, made on first use with strict host-key checking."""
        if self._connection is not None:
            return self._connection
        import paramiko
        from fabric import Config, Connection

        if self.key_file is not None and not self.key_file.is_file():
            raise ConfigError(f"SSH key file {self.key_file} does not exist: give --key the "
                              "private key authorised on the remote host")
        config = Config(overrides={"load_ssh_configs": False})
        kwargs = {"look_for_keys": False, "allow_agent": False}
        if self.key_file is not None:
            kwargs["key_filename"] = str(self.key_file)
        conn = Connection(self.host, user=self.user, port=self.port, config=config,
                          connect_timeout=self.connect_timeout, connect_kwargs=kwargs)
        if self.known_hosts.is_file():
            conn.client.load_host_keys(str(self.known_hosts))
        elif not self.accept_unknown_host:
            raise ConfigError(f"known_hosts file {self.known_hosts} does not exist: add the "
                              f"host's key there (ssh-keyscan -p {self.port} {self.host}) or "
                              "accept it explicitly")
        if self.accept_unknown_host:
            self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
            self.known_hosts.touch(exist_ok=True)
            conn.client.load_host_keys(str(self.known_hosts))  # AutoAdd saves into this file
            conn.client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            conn.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            conn.open()
        except paramiko.SSHException as exc:
            if "not found in known_hosts" in str(exc):
                raise RemoteError(f"{self.target}: its host key is not in {self.known_hosts}; "
                                  "check the host is the one you expect, then add its key "
                                  f"(ssh-keyscan -p {self.port} {self.host} >> "
                                  f"{self.known_hosts})") from None
            if isinstance(exc, paramiko.BadHostKeyException):
                raise RemoteError(f"{self.target}: host key differs from {self.known_hosts} "
                                  "(a different machine, or a reinstalled one); remove the old "
                                  "entry only if you know why it changed") from None
            if isinstance(exc, paramiko.AuthenticationException):
                raise RemoteError(f"{self.target}: authentication with key {self.key_file} was "
                                  "refused; authorise its public key for that user") from None
            raise RemoteError(f"{self.target}: SSH failed: {exc}") from None
        except OSError as exc:
            raise RemoteError(f"{self.target}: cannot connect ({exc}); check host, port and "
                              "that sshd is running") from None
        self._connection = conn
        return conn

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> SSHIO:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _sh(self, command: str, *, check: bool = True, timeout: float | None = None):
        result = self.connection().run(command, hide=True, warn=True, in_stream=False,
                                       timeout=timeout or self.command_timeout)
        if check and result.exited != 0:
            raise RemoteError(f"{self.target}: `{command}` exited {result.exited}: "
                              f"{(result.stderr or result.stdout).strip()[-500:]}")
        return result

    def path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def _q(self, *parts: str) -> str:
        """A shell-quoted remote path (relative roots stay relative to the login's home)."""
        return shlex.quote(self.path(*parts))

    # ----- push ---------------------------------------------------------------------------
    def prepare(self) -> None:
        """Create the folder tree (idempotent)."""
        self._sh("mkdir -p " + " ".join(self._q(p) for p in ("code", "home", "logs")))

    def push(self, project: str | os.PathLike, env_file: str | os.PathLike | None = None
             ) -> int:
        """Copy the project's files into <root>/code (replacing it whole) and its `.env`
        (default: `<project>/.env` if present) to <root>/.env; return the number of files."""
        project = Path(project).resolve()
        files = project_files(project)
        self.prepare()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
            for name in files:
                tar.add(project / name, arcname=name, recursive=False)
        buffer.seek(0)
        stamp = f"{os.getpid()}-{time.time_ns()}"
        archive = self.path(f".code-{stamp}.tar.gz")
        staging, old = self._q(f".code-{stamp}"), self._q(f".code-old-{stamp}")
        self.connection().put(buffer, remote=archive)
        self._sh(f"mkdir {staging} && tar -xzf {shlex.quote(archive)} -C {staging} && "
                 f"rm -f {shlex.quote(archive)} && "
                 f"mv {self._q('code')} {old} && mv {staging} {self._q('code')} && "
                 f"rm -rf {old}")
        env = Path(env_file) if env_file else project / ".env"
        if env_file and not env.is_file():
            raise ConfigError(f"env file {env} does not exist")
        if env.is_file():
            remote_env = self.path(".env")
            self.connection().put(io.BytesIO(env.read_bytes()), remote=remote_env + ".partial")
            self._sh(f"chmod 600 {shlex.quote(remote_env)}.partial && mv "
                     f"{shlex.quote(remote_env)}.partial {shlex.quote(remote_env)}")
        return len(files)

    # ----- run ----------------------------------------------------------------------------
    def _wrapped(self, command: str, name: str) -> str:
        log, status = self._q("logs", f"{name}.log"), self._q("logs", f"{name}.exit")
        env = self._q(".env")
        return (f"cd {self._q('code')} && export GEOVISION_HOME=\"$(cd ../home && pwd)\" && "
                f"if [ -f {env} ]; then set -a; . {env}; set +a; fi; "
                f"rm -f {status}; ( {command} ) > {log} 2>&1; code=$?; "
                f"echo $code > {status}; exit $code")

    def run(self, command: str, *, name: str = "run", detach: bool = False) -> int | None:
        """Run `command` in <root>/code with the pushed .env and GEOVISION_HOME=<root>/home,
        its output in <root>/logs/<name>.log. Waits and returns the exit code, or with
        `detach` starts it in the background (see `watch`) and returns None."""
        if not name or "/" in name or name.startswith("."):
            raise ConfigError(f"run name {name!r} must be a plain file name")
        self.prepare()
        inner = self._wrapped(command, name)
        if not detach:
            return self._sh(f"sh -c {shlex.quote(inner)}", check=False, timeout=None).exited
        pid = self._q("logs", f"{name}.pid")
        self._sh(f"nohup sh -c {shlex.quote(inner)} > /dev/null 2>&1 < /dev/null & "
                 f"echo $! > {pid}")
        return None

    def status(self, name: str = "run") -> int | None:
        """The exit code of the named command, or None while it is still running."""
        result = self._sh(f"cat {self._q('logs', name + '.exit')}", check=False)
        if result.exited == 0 and result.stdout.strip():
            return int(result.stdout.strip())
        alive = self._sh(f"kill -0 \"$(cat {self._q('logs', name + '.pid')})\"", check=False)
        if alive.exited != 0:
            raise RemoteError(f"{self.target}: command {name!r} is not running and left no "
                              f"exit status in {self.path('logs')}")
        return None

    # ----- pull ---------------------------------------------------------------------------
    def _listing(self, folder: str) -> dict[str, tuple[int, int]]:
        result = self._sh(f"cd {self._q(folder)} 2>/dev/null && find . -type f "
                          "-printf '%s %T@ %P\\n' || true")
        files = {}
        for line in result.stdout.splitlines():
            size, mtime, rel = line.split(" ", 2)
            if not any(part.startswith(".") and part.endswith(".partial")
                       for part in rel.split("/")):
                files[rel] = (int(size), int(float(mtime)))
        return files

    def pull(self, folder: str, dest: str | os.PathLike) -> PullReport:
        """Copy new or changed files of <root>/<folder> into `dest` (each file written under a
        temporary name and renamed, its remote modification time kept)."""
        dest = Path(dest)
        sftp = self.connection().sftp()
        copied, unchanged = [], 0
        for rel, (size, mtime) in sorted(self._listing(folder).items()):
            local = dest / rel
            if local.is_file():
                stat = local.stat()
                if stat.st_size == size and int(stat.st_mtime) == mtime:
                    unchanged += 1
                    continue
            with atomic_file(local) as tmp:
                sftp.get(self.path(folder, rel), str(tmp))
            os.utime(local, (mtime, mtime))
            copied.append(rel)
        return PullReport(copied=copied, unchanged=unchanged)

    def pull_runs(self, home: str | os.PathLike, logs: str | os.PathLike) -> PullReport:
        """Pull <root>/home/runs into the runs folder of the artifact root `home`, and
        <root>/logs into `logs`."""
        runs = self.pull("home/runs", Layout(home).runs())
        logged = self.pull("logs", logs)
        return PullReport(copied=[f"runs/{r}" for r in runs.copied]
                          + [f"logs/{r}" for r in logged.copied],
                          unchanged=runs.unchanged + logged.unchanged)

    def watch(self, home: str | os.PathLike, logs: str | os.PathLike, *, name: str = "run",
              interval: float = 30.0, max_pulls: int | None = None,
              on_pull: Callable[[PullReport], None] | None = None) -> int | None:
        """Pull every `interval` seconds until the named command ends (then once more) or
        `max_pulls` pulls were made; return its exit code (None if still running)."""
        pulls = 0
        while True:
            code = self.status(name)
            report = self.pull_runs(home, logs)
            pulls += 1
            if on_pull is not None:
                on_pull(report)
            if code is not None or (max_pulls is not None and pulls >= max_pulls):
                return code
            time.sleep(interval)
