"""`geovision remote push|run|pull|watch`: work on a GPU server over SSH (SSHIO)."""

from __future__ import annotations

from pathlib import Path

import typer

remote_app = typer.Typer(help="Run on another machine over SSH: push the code and .env, run "
                         "a command there, pull its runs and logs.", no_args_is_help=True,
                         rich_markup_mode=None)

HOST = typer.Option(..., "--host", envvar="GEOVISION_REMOTE_HOST", help="remote host name")
USER = typer.Option(None, "--user", envvar="GEOVISION_REMOTE_USER", help="login (default: "
                    "yours)")
PORT = typer.Option(22, "--port", envvar="GEOVISION_REMOTE_PORT")
KEY = typer.Option(None, "--key", envvar="GEOVISION_REMOTE_KEY", help="private key file (the "
                   "only key offered; no agent)")
KNOWN_HOSTS = typer.Option(Path("~/.ssh/known_hosts"), "--known-hosts",
                           envvar="GEOVISION_REMOTE_KNOWN_HOSTS", help="host keys to trust")
ROOT = typer.Option("geovision", "--root", envvar="GEOVISION_REMOTE_ROOT",
                    help="remote folder tree (relative: under the login's home)")
ACCEPT = typer.Option(False, "--accept-unknown-host", help="trust and record a host key not "
                      "yet in known_hosts (first contact only)")
HOME = typer.Option(None, "--home", help="local artifact root that receives the runs "
                    "(default: $GEOVISION_HOME or ./.geovision_home)")


def _connect(host, user, port, key, known_hosts, root, accept):
    from geovision.io.ssh import SSHIO

    return SSHIO(host, user=user, port=port, key_file=key, known_hosts=known_hosts, root=root,
                 accept_unknown_host=accept)


@remote_app.command("push")
def push(project: Path = typer.Option(Path("."), "--project", help="project checkout"),
         env_file: Path | None = typer.Option(None, "--env-file", help="default: "
                                              "<project>/.env if present"),
         host: str = HOST, user: str | None = USER, port: int = PORT, key: Path | None = KEY,
         known_hosts: Path = KNOWN_HOSTS, root: str = ROOT, accept: bool = ACCEPT) -> None:
    """Copy the project's files (as git lists them) and its .env into <root>/code."""
    with _connect(host, user, port, key, known_hosts, root, accept) as remote:
        count = remote.push(project, env_file)
        typer.echo(f"pushed {count} files to {remote.target}:{remote.path('code')}")


@remote_app.command("run", context_settings={"allow_interspersed_args": False})
def run(command: list[str] = typer.Argument(..., help="the command, e.g. geovision train "
                                            "recipes/demo.yaml --dataset synthetic"),
        name: str = typer.Option("run", "--name", help="log name: <root>/logs/<name>.log"),
        detach: bool = typer.Option(False, "--detach", help="start it and return (follow it "
                                    "with `geovision remote watch`)"),
        host: str = HOST, user: str | None = USER, port: int = PORT, key: Path | None = KEY,
        known_hosts: Path = KNOWN_HOSTS, root: str = ROOT, accept: bool = ACCEPT) -> None:
    """Run a command in <root>/code with the pushed .env; exits with its exit code."""
    import shlex

    with _connect(host, user, port, key, known_hosts, root, accept) as remote:
        code = remote.run(shlex.join(command), name=name, detach=detach)
    if code is None:
        typer.echo(f"started {name!r} on {remote.target}; log {remote.path('logs', name)}.log")
        return
    typer.echo(f"{name!r} on {remote.target} exited {code}; log "
               f"{remote.path('logs', name)}.log")
    raise typer.Exit(code)


def _pulled(report) -> str:
    return f"{report.num_copied} files copied, {report.unchanged} unchanged"


@remote_app.command("pull")
def pull(home: Path | None = HOME, host: str = HOST, user: str | None = USER, port: int = PORT,
         key: Path | None = KEY, known_hosts: Path = KNOWN_HOSTS, root: str = ROOT,
         accept: bool = ACCEPT) -> None:
    """Copy new or changed run folders and logs from the remote host."""
    from geovision.layout import Layout

    layout = Layout(home)
    with _connect(host, user, port, key, known_hosts, root, accept) as remote:
        report = remote.pull_runs(layout.home, layout.remote_logs(host))
    typer.echo(f"{_pulled(report)}: runs under {layout.runs()}, logs under "
               f"{layout.remote_logs(host)}")


@remote_app.command("watch")
def watch(name: str = typer.Option("run", "--name", help="the detached command's name"),
          interval: float = typer.Option(30.0, "--interval", min=0.1, help="seconds between "
                                         "pulls"),
          max_pulls: int | None = typer.Option(None, "--max-pulls", min=1, help="stop after "
                                               "this many pulls even if it still runs"),
          home: Path | None = HOME, host: str = HOST, user: str | None = USER, port: int = PORT,
          key: Path | None = KEY, known_hosts: Path = KNOWN_HOSTS, root: str = ROOT,
          accept: bool = ACCEPT) -> None:
    """Pull runs and logs periodically until the detached command ends; exit with its code."""
    from geovision.layout import Layout

    layout = Layout(home)
    with _connect(host, user, port, key, known_hosts, root, accept) as remote:
        code = remote.watch(layout.home, layout.remote_logs(host), name=name,
                            interval=interval, max_pulls=max_pulls,
                            on_pull=lambda r: typer.echo(_pulled(r)))
    if code is None:
        typer.echo(f"{name!r} is still running on {remote.target}")
        return
    typer.echo(f"{name!r} exited {code}; runs under {layout.runs()}")
    raise typer.Exit(code)
