"""SSHIO and `geovision remote ...` against a real OpenSSH sshd on loopback."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from geovision.errors import ConfigError, RemoteError
from geovision.io.ssh import SSHIO


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A small git checkout: tracked, untracked and ignored files, and a .env."""
    root = tmp_path / "project"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "train.py").write_text("print('training')\n")
    (root / "README.md").write_text("readme\n")
    (root / ".gitignore").write_text(".env\nbig/\n")
    (root / "big").mkdir()
    (root / "big" / "weights.bin").write_bytes(b"0" * 1000)
    (root / ".env").write_text("GEOVISION_SECRET_TOKEN=tok-123\nEPOCHS=3\n")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    subprocess.run(["git", "add", "pkg", "README.md", ".gitignore"], cwd=root, check=True)
    (root / "notes.txt").write_text("untracked but not ignored\n")
    return root


def remote_for(sshd, tmp_path: Path, **kwargs) -> SSHIO:
    options = {"user": sshd.user, "port": sshd.port, "key_file": sshd.key_file,
               "known_hosts": sshd.known_hosts, "root": str(tmp_path / "remote")} | kwargs
    return SSHIO(sshd.host, **options)


def test_push_run_pull(sshd, project, tmp_path):
    with remote_for(sshd, tmp_path) as remote:
        assert remote.push(project) == 4  # .gitignore, README.md, notes.txt, pkg/train.py
        code = tmp_path / "remote" / "code"
        assert sorted(p.relative_to(code).as_posix() for p in code.rglob("*")
                      if p.is_file()) == [".gitignore", "README.md", "notes.txt",
                                          "pkg/train.py"]
        env = tmp_path / "remote" / ".env"
        assert env.read_text() == (project / ".env").read_text()
        assert stat.S_IMODE(env.stat().st_mode) == 0o600
        (project / "README.md").write_text("changed\n")
        (project / "notes.txt").unlink()
        remote.push(project)
        assert (code / "README.md").read_text() == "changed\n"
        assert not (code / "notes.txt").exists()  # replaced whole, nothing stale

        command = ('mkdir -p "$GEOVISION_HOME/runs/demo/r1" && python3 pkg/train.py && '
                   'echo "epochs=$EPOCHS" > "$GEOVISION_HOME/runs/demo/r1/metrics.csv"')
        assert remote.run(command, name="train") == 0
        logs = tmp_path / "remote" / "logs"
        assert (logs / "train.log").read_text() == "training\n"
        assert remote.run("echo oops >&2; exit 3", name="fails") == 3
        assert (logs / "fails.log").read_text() == "oops\n"

        home, local_logs = tmp_path / "local", tmp_path / "local_logs"
        first = remote.pull_runs(home, local_logs)
        assert sorted(first.copied) == ["logs/fails.exit", "logs/fails.log", "logs/train.exit",
                                        "logs/train.log", "runs/demo/r1/metrics.csv"]
        assert (home / "runs" / "demo" / "r1" / "metrics.csv").read_text() == "epochs=3\n"
        assert remote.pull_runs(home, local_logs).num_copied == 0
        remote.run('echo "epochs=4" > "$GEOVISION_HOME/runs/demo/r1/metrics.csv"', name="train")
        assert "runs/demo/r1/metrics.csv" in remote.pull_runs(home, local_logs).copied
        assert (home / "runs" / "demo" / "r1" / "metrics.csv").read_text() == "epochs=4\n"


def test_detached_run_is_watched_until_it_ends(sshd, project, tmp_path):
    with remote_for(sshd, tmp_path) as remote:
        remote.push(project)
        command = ('for i in 1 2 3; do mkdir -p "$GEOVISION_HOME/runs/p/n"; '
                   'echo $i >> "$GEOVISION_HOME/runs/p/n/metrics.csv"; sleep 0.4; done; exit 5')
        assert remote.run(command, name="long", detach=True) is None
        assert remote.status("long") is None  # still running
        pulls = []
        code = remote.watch(tmp_path / "home", tmp_path / "logs", name="long", interval=0.3,
                            on_pull=pulls.append)
        assert code == 5 and len(pulls) >= 2
        metrics = tmp_path / "home" / "runs" / "p" / "n" / "metrics.csv"
        assert metrics.read_text() == "1\n2\n3\n"
        assert (tmp_path / "logs" / "long.exit").read_text().strip() == "5"


def test_host_keys_are_checked(sshd, tmp_path):
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    with pytest.raises(RemoteError, match="host key is not in"):
        remote_for(sshd, tmp_path, known_hosts=empty).connection()
    with pytest.raises(ConfigError, match="known_hosts file .* does not exist"):
        remote_for(sshd, tmp_path, known_hosts=tmp_path / "absent").connection()
    other = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other)],
                   check=True)
    wrong = tmp_path / "wrong_known_hosts"
    wrong.write_text(f"[127.0.0.1]:{sshd.port} {Path(f'{other}.pub').read_text()}")
    with pytest.raises(RemoteError, match="host key differs"):
        remote_for(sshd, tmp_path, known_hosts=wrong).connection()
    recorded = tmp_path / "new_known_hosts"
    with remote_for(sshd, tmp_path, known_hosts=recorded, accept_unknown_host=True) as remote:
        remote.prepare()
    assert sshd.host_key_pub.read_text().split()[1] in recorded.read_text()
    with remote_for(sshd, tmp_path, known_hosts=recorded) as remote:  # now known
        assert remote.run("true") == 0


def test_only_the_given_key_is_offered(sshd, tmp_path):
    stranger = tmp_path / "stranger"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(stranger)],
                   check=True)
    with pytest.raises(RemoteError, match="authentication .* refused"):
        remote_for(sshd, tmp_path, key_file=stranger).connection()
    with pytest.raises(ConfigError, match="key file .* does not exist"):
        remote_for(sshd, tmp_path, key_file=tmp_path / "nokey").connection()


def test_remote_cli_end_to_end(sshd, project, tmp_path):
    env = dict(os.environ, GEOVISION_REMOTE_HOST=sshd.host, GEOVISION_REMOTE_PORT=str(sshd.port),
               GEOVISION_REMOTE_USER=sshd.user, GEOVISION_REMOTE_KEY=str(sshd.key_file),
               GEOVISION_REMOTE_KNOWN_HOSTS=str(sshd.known_hosts),
               GEOVISION_REMOTE_ROOT=str(tmp_path / "remote"),
               GEOVISION_HOME=str(tmp_path / "home"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "geovision.cli", "remote", *args],
                              env=env, capture_output=True, text=True, timeout=120)

    pushed = cli("push", "--project", str(project))
    assert pushed.returncode == 0, pushed.stderr
    assert "pushed 4 files" in pushed.stdout
    ran = cli("run", "--name", "t", "sh", "-c",
              'mkdir -p "$GEOVISION_HOME/runs/x/y" && echo $EPOCHS > "$GEOVISION_HOME/runs/x/y/e"')
    assert ran.returncode == 0, ran.stderr
    failed = cli("run", "--name", "f", "sh", "-c", "exit 4")
    assert failed.returncode == 4 and "exited 4" in failed.stdout
    pulled = cli("pull")
    assert pulled.returncode == 0, pulled.stderr
    assert (tmp_path / "home" / "runs" / "x" / "y" / "e").read_text() == "3\n"
    logs = tmp_path / "home" / "remote" / sshd.host / "logs"
    assert (logs / "f.exit").read_text().strip() == "4"
    started = cli("run", "--detach", "--name", "bg", "sh", "-c", "sleep 0.5; exit 0")
    assert started.returncode == 0 and "started 'bg'" in started.stdout
    watched = cli("watch", "--name", "bg", "--interval", "0.2")
    assert watched.returncode == 0 and "'bg' exited 0" in watched.stdout
    bad = subprocess.run([sys.executable, "-m", "geovision.cli", "remote", "pull"],
                         env=env | {"GEOVISION_REMOTE_KNOWN_HOSTS": str(tmp_path / "none")},
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: known_hosts file")
