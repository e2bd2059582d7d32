"""The `zzhub` command: serve, demo, token, check, hash-password, verify, cert."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import resource
import signal
import sys
from pathlib import Path

from aiohttp import web

from config import ConfigError, HubConfig, load_config
from config.schema import Role

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "config" / "demo.yaml"
EXIT_CONFIG = 2


EXIT_SYSTEM = 3
# native libraries the media packages load, and the Debian package that has each; the
# manylinux wheels of av, opencv-python-headless and aiortc bundle their codecs, so only a
# trimmed-down system lacks one of these
NATIVE_MODULES = ("numpy", "av", "cv2", "aiortc", "cryptography")
LIBRARY_PACKAGES = {
    "libGL.so": "libgl1",
    "libgthread-2.0.so": "libglib2.0-0",
    "libglib-2.0.so": "libglib2.0-0",
    "libstdc++.so": "libstdc++6",
    "libgomp.so": "libgomp1",
    "libz.so": "zlib1g",
    "libssl.so": "libssl3",
    "libcrypto.so": "libssl3",
    "libffi.so": "libffi8",
    "libX11.so": "libx11-6",
    "libXext.so": "libxext6",
}


def missing_native_library() -> str | None:
    """Import the media packages once, before serving: a system library they need and do not
    bundle makes this say which one (and its Debian package) instead of a traceback."""
    import importlib
    import re

    for module in NATIVE_MODULES:
        try:
            importlib.import_module(module)
        except (ImportError, OSError) as err:
            text = str(err)
            found = re.search(r"(lib[\w.+-]+?\.so)[\w.]*", text)
            if found is None:
                return f"cannot load the Python package {module!r}: {text}"
            library = found.group(0)
            package = LIBRARY_PACKAGES.get(found.group(1))
            hint = f"apt-get install {package}" if package else f"apt-file search {library}"
            return (
                f"cannot load {module!r}: the system library {library} is missing ({hint}): {text}"
            )
    return None


def _load(path: str | None) -> HubConfig:
    return load_config(path or DEMO_CONFIG)


def _raise_open_files_limit() -> None:
    """Thousands of WebSockets, cameras and peers need more than the default 1024 descriptors:
    raise the soft limit to the hard one (what the administrator allows)."""
    try:
        _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError):
        pass


async def _serve(config: HubConfig, banner: list[str], *, demo: bool = False) -> None:
    from hub.app import build_app

    _raise_open_files_limit()
    app = build_app(config)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    from hub.core.tls import server_ssl_context

    ssl_context = server_ssl_context(config.http)
    site = web.TCPSite(runner, config.http.host, config.http.port, ssl_context=ssl_context)
    await site.start()
    device = None
    if demo:
        from hub.gb28181.demo import start_demo_device

        try:
            device = await start_demo_device(app, config)
        except Exception as err:  # the demo still serves without its GB/T 28181 NVR
            print(f"demo GB/T 28181 NVR did not register: {err}", file=sys.stderr, flush=True)
        if device is not None:
            host, port = device.hub
            line = f"GB/T 28181: simulated NVR {device.id} registered over SIP udp/tcp "
            banner = [*banner, f"{line}{host}:{port}, {len(device.channels)} channels"]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    host = config.http.host
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if ssl_context is not None else "http"
    print(f"zzhub listening on {scheme}://{shown}:{config.http.port}/", flush=True)
    for line in banner:
        print(line, flush=True)
    try:
        await stop.wait()
    finally:
        print("zzhub shutting down", flush=True)
        if device is not None:
            await device.close()
        await runner.cleanup()


def _system_problem() -> int | None:
    problem = missing_native_library()
    if problem is None:
        return None
    print(f"error: {problem}", file=sys.stderr)
    return EXIT_SYSTEM


def cmd_serve(args: argparse.Namespace) -> int:
    if (code := _system_problem()) is not None:
        return code
    config = _load(args.config)
    asyncio.run(_serve(config, []))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    if (code := _system_problem()) is not None:
        return code
    config = _load(None)
    http = config.http.model_copy(
        update={
            "host": args.host or os.environ.get("HOST") or config.http.host,
            "port": int(args.port or os.environ.get("PORT") or config.http.port),
            "data_dir": args.data or config.http.data_dir,
        }
    )
    config = config.model_copy(update={"http": http})
    Path(config.http.data_dir).mkdir(parents=True, exist_ok=True)
    host = "127.0.0.1" if http.host in ("0.0.0.0", "") else http.host
    banner = [
        f"console: http://{host}:{http.port}/",
        "demo logins (user / password, role, centre):",
    ]
    banner += [
        f"  {u.name} / {u.password}  {u.role}  {u.centre} {u.display_name}" for u in config.users
    ]
    banner.append("or mint a token: zzhub token --user NAME --role ROLE --centre CODE")
    asyncio.run(_serve(config, banner, demo=True))
    return 0


def cmd_token(args: argparse.Namespace) -> int:
    from hub.core.auth import TokenIssuer

    config = _load(args.config)
    if not args.centre.isdigit() or len(args.centre) not in (6, 9, 12):
        print(
            f"error: --centre {args.centre!r} is not a 6, 9 or 12 digit centre code",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    issuer = TokenIssuer(config.auth.secret, config.auth.token_ttl)
    print(issuer.issue(args.user, Role(args.role), args.centre, args.ttl))
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    cameras = sum(len(c.cameras) for c in config.centres)
    plain = [u.name for u in config.users if u.password and not u.password.startswith("pbkdf2_")]
    print(
        f"{args.config}: ok — {len(config.centres)} centres, {cameras} cameras, "
        f"{len(config.users)} users"
    )
    if plain:
        print(f"warning: plain-text passwords for {', '.join(plain)} (use zzhub hash-password)")
    return 0


def cmd_hash_password(args: argparse.Namespace) -> int:
    from hub.core.auth import hash_password

    password = args.password if args.password is not None else sys.stdin.readline().rstrip("\n")
    print(hash_password(password))
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    """Exit 0 when everything checks out, 1 when a problem is found (each one named)."""
    from hub.recordings.verify import verify_audit, verify_path

    if args.audit:
        if not args.config:
            print(
                "error: --audit needs -c CONFIG (the hub whose database to check)", file=sys.stderr
            )
            return EXIT_CONFIG
        config = load_config(args.config)
        report = verify_audit(Path(config.http.data_dir) / "zzhub.sqlite3")
        what = "audit rows"
    elif args.path:
        report = verify_path(Path(args.path))
        what = "files"
    else:
        print(
            "error: give a PATH (recording folder or export zip) or --audit -c CONFIG",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    for line in [*report.problems, *report.notes]:
        print(line)
    verdict = "OK" if report.ok else f"{len(report.problems)} problem(s)"
    print(f"verify: {report.checked} {what} checked, {verdict}")
    return 0 if report.ok else 1


def cmd_cert(args: argparse.Namespace) -> int:
    from hub.core.tls import install_hints, make_certificates, split_names

    try:
        files = make_certificates(Path(args.out), split_names(args.names), args.days)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    for line in install_hints(files):
        print(line)
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="zzhub", description="Video hub for 综治中心 county/township/village centres"
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("serve", help="run the hub with a config file")
    s.add_argument("-c", "--config", required=True)
    s.set_defaults(func=cmd_serve)

    d = sub.add_parser("demo", help="run the built-in demo topology with simulated cameras")
    d.add_argument("--host")
    d.add_argument("--port", type=int)
    d.add_argument("--data")
    d.set_defaults(func=cmd_demo)

    t = sub.add_parser("token", help="print a bearer token (last line of stdout)")
    t.add_argument("--user", required=True)
    t.add_argument("--role", required=True, choices=[str(r) for r in Role])
    t.add_argument("--centre", required=True)
    t.add_argument("--ttl", type=int, default=None, help="seconds (default: auth.token_ttl)")
    t.add_argument("-c", "--config", help="config file (default: the demo's)")
    t.set_defaults(func=cmd_token)

    c = sub.add_parser("check", help="validate a config file (exit 2 on error)")
    c.add_argument("-c", "--config", required=True)
    c.set_defaults(func=cmd_check)

    v = sub.add_parser("verify", help="check recordings, an export zip or the audit log")
    v.add_argument("path", nargs="?", help="a recording folder or an export zip")
    v.add_argument("--audit", action="store_true", help="check the audit log's hash chain")
    v.add_argument("-c", "--config", help="config file (with --audit)")
    v.set_defaults(func=cmd_verify)

    h = sub.add_parser("hash-password", help="hash a password for the users section")
    h.add_argument("password", nargs="?")
    h.set_defaults(func=cmd_hash_password)

    e = sub.add_parser("cert", help="make a local CA (kept) and a server certificate for HTTPS")
    e.add_argument("--out", required=True, help="folder for ca.crt/ca.key/server.crt/server.key")
    e.add_argument("--names", required=True, help="LAN names and IPs: hub.local,10.20.30.40")
    e.add_argument("--days", type=int, default=825, help="server certificate lifetime")
    e.set_defaults(func=cmd_cert)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    try:
        code: int = args.func(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
