"""Serve a static STAC catalogue as a STAC API (stac-fastapi-static) on a loopback port.

Run with the interpreter of the separate `.venv-stac` environment (its starlette/fastapi pins
clash with dagster-webserver's), never imported by geovision: it imports only that package
and uvicorn. Binds port 0 unless told otherwise and prints `PORT <n>` once it listens.

    .venv-stac/bin/python geovision/satellite/stac_serve.py --catalog /path/catalog.json
"""

import argparse
import socket
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", required=True, help="path of catalog.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    import uvicorn
    from stac_fastapi.static.api import Settings, make_api

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    href = args.catalog if "://" in args.catalog else "file://" + args.catalog
    settings = Settings(catalog_href=href, reload=False, app_host=args.host, app_port=port,
                        log_level="warning")
    app = make_api(settings).app
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    print(f"PORT {port}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    sys.exit(main())
