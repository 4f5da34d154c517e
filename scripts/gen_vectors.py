#!/usr/bin/env python3
"""Mint test tokens with PyJWT, an implementation independent of ours.

Writes tests/vectors/pyjwt.json: tokens for every supported algorithm, each
with the outcome the Rust guard must reach at the fixed time T0 (a FakeClock).
The keys are the committed PEM files in tests/vectors/keys/.

Regenerate (the output is committed; tests do not need Python):
    python3 -m venv /tmp/venv && /tmp/venv/bin/pip install pyjwt cryptography
    /tmp/venv/bin/python scripts/gen_vectors.py
"""
import json
import pathlib

import jwt  # PyJWT

ROOT = pathlib.Path(__file__).resolve().parent.parent
KEYS = ROOT / "tests" / "vectors" / "keys"
T0 = 1_800_000_000
SECRET = "pyjwt-vector-secret-pyjwt-vector-secret-pyjwt-vector-secret-64b!"  # 64 bytes


def key(name):
    return (KEYS / name).read_text()


SIGNERS = {
    "HS256": SECRET,
    "HS384": SECRET,
    "HS512": SECRET,
    "RS256": key("rsa_private.pem"),
    "RS384": key("rsa_private.pem"),
    "PS256": key("rsa_private.pem"),
    "ES256": key("ec_private.pem"),
    "EdDSA": key("ed_private.pem"),
}


def claims(**over):
    base = {"sub": "alice", "iat": T0, "exp": T0 + 600, "ver": 0}
    base.update(over)
    return {k: v for k, v in base.items() if v is not None}


vectors = []
for alg, signing_key in SIGNERS.items():
    vectors.append({"name": f"{alg} valid", "alg": alg, "expect": "ok",
                    "token": jwt.encode(claims(), signing_key, algorithm=alg)})
    vectors.append({"name": f"{alg} expired", "alg": alg, "expect": "expired",
                    "token": jwt.encode(claims(iat=T0 - 7200, exp=T0 - 3600), signing_key, algorithm=alg)})
    vectors.append({"name": f"{alg} revoked version", "alg": alg, "expect": "token_revoked",
                    "token": jwt.encode(claims(sub="bob", ver=0), signing_key, algorithm=alg)})

# Claims PyJWT happily signs but our guard must refuse.
hs = SIGNERS["HS256"]
odd = [
    ("ver as string", claims(ver="7"), "malformed"),
    ("ver float", claims(ver=1.5), "malformed"),
    ("ver negative", claims(ver=-1), "malformed"),
    ("iat as string", claims(iat=str(T0)), "malformed"),
    ("iat in the far future", claims(iat=T0 + 86400), "issued_in_future"),
    ("missing ver", claims(ver=None), "missing_claim"),
    ("missing iat", claims(iat=None), "missing_claim"),
    ("missing exp", claims(exp=None), "missing_claim"),
    ("missing sub", claims(sub=None), "missing_claim"),
    ("nbf in the future", claims(nbf=T0 + 3600), "not_yet_valid"),
    ("unknown subject", claims(sub="mallory"), "unknown_subject"),
]
for name, c, expect in odd:
    vectors.append({"name": name, "alg": "HS256", "expect": expect,
                    "token": jwt.encode(c, hs, algorithm="HS256")})

# Wrong key, unknown kid, alg none.
vectors.append({"name": "HS256 signed with another secret", "alg": "HS256", "expect": "invalid_signature",
                "token": jwt.encode(claims(), "another-secret-another-secret-another-secret-another-secret-64b", algorithm="HS256")})
vectors.append({"name": "unknown kid", "alg": "HS256", "expect": "unknown_key",
                "token": jwt.encode(claims(), hs, algorithm="HS256", headers={"kid": "nope"})})
vectors.append({"name": "alg none", "alg": "HS256", "expect": "algorithm_not_allowed",
                "token": jwt.encode(claims(), None, algorithm="none")})

out = {"generator": f"PyJWT {jwt.__version__}", "t0": T0, "hmac_secret": SECRET, "vectors": vectors}
(ROOT / "tests" / "vectors" / "pyjwt.json").write_text(json.dumps(out, indent=1) + "\n")
print(f"wrote {len(vectors)} vectors")
