"""A local OIDC issuer, so OAuth2 tokens work end to end in the local cloud without the internet.

It keeps an RSA key in the local cloud's state folder, publishes its public half as a JWKS file
that the authorizer is configured to trust (the `jwks_file` form of an issuer), and mints tokens:

    .venv/bin/python -m local_cloud.token --tenant demo --scopes chat
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

ISSUER = "https://local-cloud.invalid/issuer"  # never resolved: the keys come from the JWKS file
AUDIENCE = "deepseek-gateway"
KID = "local-cloud-1"


class LocalIssuer:
    def __init__(self, state_dir: Path) -> None:
        self.dir = state_dir / "oidc"
        self.key_path = self.dir / "private_key.pem"
        self.jwks_path = self.dir / "jwks.json"

    def ensure(self) -> LocalIssuer:
        """Create the key pair once; later runs reuse it so tokens minted earlier keep working."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from jwt.algorithms import RSAAlgorithm

        self.dir.mkdir(parents=True, exist_ok=True)
        if not self.key_path.exists():
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            self.key_path.write_bytes(pem)
            os.chmod(self.key_path, 0o600)
        private = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        public = json.loads(RSAAlgorithm.to_jwk(private.public_key()))  # type: ignore[arg-type]
        self.jwks_path.write_text(json.dumps({"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]}))
        return self

    def issuer_config(self) -> dict[str, Any]:
        """The entry the local cloud adds to the `oidc_issuers` context for the authorizer."""
        return {"issuer": ISSUER, "audiences": [AUDIENCE], "jwks_file": str(self.jwks_path),
                "algorithms": ["RS256"], "flavor": "generic", "tenant_claim": "tenant_id"}

    def mint(self, tenant_id: str, scopes: list[str], subject: str = "local-user", ttl_s: int = 3600) -> str:
        import jwt

        now = int(time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "tenant_id": tenant_id,
                  "scope": " ".join(scopes), "iat": now, "nbf": now, "exp": now + ttl_s, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self.key_path.read_bytes(), algorithm="RS256", headers={"kid": KID})
