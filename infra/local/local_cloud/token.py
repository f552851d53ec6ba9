"""Mint an OAuth2 access token from the local cloud's issuer: `python -m local_cloud.token --tenant demo`."""

from __future__ import annotations

import argparse
import sys

from local_cloud.cloud import LocalCloudConfig
from local_cloud.oidc_issuer import LocalIssuer


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local_cloud.token", description=__doc__)
    parser.add_argument("--tenant", default="demo")
    parser.add_argument("--scopes", default="chat", help="comma-separated: chat,batch,files,admin")
    parser.add_argument("--subject", default="local-user")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds")
    args = parser.parse_args(argv)
    issuer = LocalIssuer(LocalCloudConfig().state_dir)
    if not issuer.key_path.exists():
        print("no local issuer yet: start the local cloud once with `make run`", file=sys.stderr)
        return 1
    print(issuer.mint(args.tenant, args.scopes.split(","), args.subject, args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
