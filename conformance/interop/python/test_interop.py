"""Authlib, PyJWT and joserfc against `ajwt serve` (issue 11, interop suite).

* client_credentials with Authlib's httpx OAuth2Client (client_secret_basic
  and client_secret_post), RFC 6749 §4.4;
* Authlib's RFC 8414 `AuthorizationServerMetadata(...).validate()` on our
  metadata;
* an intent token obtained through the agent_checksum grant (draft §4.2, JSON
  over the client's bearer token, sent by the same Authlib client), validated
  with PyJWT (PyJWKClient) and with joserfc, each checking every §4.4.2 claim
  with the hashes recomputed here (hashlib) and `cnf.jwk` compared with the
  agent's registered key (cryptography);
* the status list token its `status` claim points to (draft-ietf-oauth-status-list),
  verified with PyJWT and decoded with zlib here, before and after an RFC 7009
  revocation (I-92).

Our servers listen on loopback http://, so AUTHLIB_INSECURE_TRANSPORT is set.
"""
import base64
import hashlib
import json
import os
import time
import unittest
import zlib

os.environ.setdefault("AUTHLIB_INSECURE_TRANSPORT", "1")

import httpx  # noqa: E402
import jwt  # noqa: E402  (PyJWT)
from authlib.integrations.httpx_client import OAuth2Client  # noqa: E402
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa  # noqa: E402
from joserfc import jwt as jrfc_jwt  # noqa: E402
from joserfc.jwk import KeySet  # noqa: E402

FX = json.loads(open(os.environ["AJWT_INTEROP_FIXTURES"]).read())
ISSUER = FX["issuer"]
AUDIENCE = "https://py.interop.example"
ALGS = ["ES256", "EdDSA", "Ed25519", "RS256", "PS256"]
WORKFLOW = "interop-workflow-v1"
STEPS = ["step_1_collect", "step_2_act"]


def metadata(issuer=ISSUER):
    r = httpx.get(f"{issuer}/.well-known/oauth-authorization-server", timeout=10)
    r.raise_for_status()
    return r.json()


def h16(s):
    return hashlib.sha256(s.encode()).hexdigest()[:16]


def b64u(n, length=None):
    raw = n.to_bytes(length or (n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def registered_jwk_members(pem):
    """The registered public key's JWK members, computed from the PEM here."""
    key = serialization.load_pem_public_key(pem.encode())
    if isinstance(key, ed25519.Ed25519PublicKey):
        raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return {"kty": "OKP", "crv": "Ed25519", "x": base64.urlsafe_b64encode(raw).rstrip(b"=").decode()}
    if isinstance(key, ec.EllipticCurvePublicKey):
        n = key.public_numbers()
        return {"kty": "EC", "crv": "P-256", "x": b64u(n.x, 32), "y": b64u(n.y, 32)}
    assert isinstance(key, rsa.RSAPublicKey)
    n = key.public_numbers()
    return {"kty": "RSA", "n": b64u(n.n), "e": b64u(n.e)}


def rfc7638_thumbprint(members):
    required = {"OKP": ["crv", "kty", "x"], "EC": ["crv", "kty", "x", "y"], "RSA": ["e", "kty", "n"]}
    m = {k: members[k] for k in required[members["kty"]]}
    digest = hashlib.sha256(json.dumps(m, separators=(",", ":"), sort_keys=True).encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authlib_client(auth_method="client_secret_basic"):
    admin = FX["admin_client"]
    return OAuth2Client(admin["client_id"], admin["client_secret"],
                        token_endpoint_auth_method=auth_method, timeout=30)


def intent_token(kind):
    """An intent token for step 2 of interop-workflow-v1, through Authlib."""
    md = metadata()
    client = authlib_client()
    client.fetch_token(md["token_endpoint"], grant_type="client_credentials")
    agent = FX["agents"][kind]
    r = client.post(md["token_endpoint"], json={
        "grant_type": "agent_checksum",
        "agent_id": agent["agent_id"],
        "computed_checksum": agent["checksum"],
        "workflow_id": WORKFLOW,
        "workflow_step": STEPS[1],
        "workflow_enabled": True,
        "requested_scopes": ["vulnerability:read"],
        "audience": AUDIENCE,
        "delegation_context": {"chain": [], "completed_steps": STEPS[:1]},
    })
    if r.status_code != 200:
        raise AssertionError(f"agent_checksum grant: {r.status_code} {r.text}")
    body = r.json()
    return body, agent


class Metadata(unittest.TestCase):
    # Issue 11 item 8: Authlib refuses `response_types_supported: []`.
    def test_rfc8414_s2_authlib_validates_our_metadata(self):
        AuthorizationServerMetadata(metadata()).validate()

    def test_rfc8414_s3_metadata_issuer_is_ours(self):
        md = metadata()
        self.assertEqual(md["issuer"], ISSUER)
        self.assertIn("client_credentials", md["grant_types_supported"])


class ClientCredentials(unittest.TestCase):
    def check(self, method):
        md = metadata()
        token = authlib_client(method).fetch_token(md["token_endpoint"], grant_type="client_credentials")
        self.assertEqual(token["token_type"].lower(), "bearer")
        self.assertGreater(token["expires_in"], 0)
        # RFC 9068 access token, checked with PyJWT against the JWKS.
        key = jwt.PyJWKClient(md["jwks_uri"]).get_signing_key_from_jwt(token["access_token"])
        claims = jwt.decode(token["access_token"], key, algorithms=ALGS, issuer=ISSUER,
                            options={"verify_aud": False, "require": ["exp", "iat", "jti", "sub"]})
        self.assertEqual(claims["client_id"], FX["admin_client"]["client_id"])
        self.assertEqual(jwt.get_unverified_header(token["access_token"])["typ"], "at+jwt")

    def test_rfc6749_s4_4_authlib_client_credentials_client_secret_basic(self):
        self.check("client_secret_basic")

    def test_rfc6749_s4_4_authlib_client_credentials_client_secret_post(self):
        self.check("client_secret_post")


class IntentTokenClaims(unittest.TestCase):
    def check_claims(self, claims, header, agent, body):
        # §4.4.1 response
        self.assertEqual(body["token_type"].lower(), "bearer", "§4.4.1 token_type without a DPoP proof")
        # §4.4.2 standard claims
        self.assertEqual(claims["iss"], ISSUER)
        aud = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        self.assertIn(AUDIENCE, aud)
        self.assertEqual(claims["sub"], agent["agent_id"])
        self.assertIsInstance(claims["jti"], str)
        self.assertTrue(claims["jti"])
        self.assertLessEqual(claims["iat"], time.time() + 30)
        self.assertEqual(claims["exp"] - claims["iat"], 300, "§4.4.2 SHOULD be iat + 300")
        self.assertEqual(claims["scope"], "vulnerability:read")
        # cnf (RFC 7800): the agent's registered key
        expected = registered_jwk_members(agent["public_key_pem"])
        for k, v in expected.items():
            self.assertEqual(claims["cnf"]["jwk"][k], v, f"cnf.jwk.{k}")
        self.assertEqual(claims["cnf"]["jwk"]["kid"], rfc7638_thumbprint(expected))
        # intent (§4.4.2, hashes per §4.4.4 recomputed with hashlib)
        intent = claims["intent"]
        self.assertEqual(intent["workflow_id"], WORKFLOW)
        self.assertEqual(intent["workflow_step"], STEPS[1])
        self.assertEqual(intent["executed_by"], claims["sub"])
        self.assertEqual(intent["delegation_chain"], h16(agent["agent_id"]))
        self.assertEqual(intent["step_sequence_hash"], h16("|".join(STEPS)))
        # agent_proof
        proof = claims["agent_proof"]
        self.assertEqual(proof["agent_checksum"], agent["checksum"])
        self.assertTrue(proof["registration_id"].startswith(f"reg_{agent['agent_id']}_"), proof["registration_id"])
        self.assertEqual(header["typ"], "JWT")
        self.assertIn(header["alg"], ALGS)

    def test_s4_4_2_intent_token_claims_validated_with_pyjwt(self):
        for kind in FX["agents"]:
            with self.subTest(kind=kind):
                body, agent = intent_token(kind)
                token = body["access_token"]
                key = jwt.PyJWKClient(metadata()["jwks_uri"]).get_signing_key_from_jwt(token)
                claims = jwt.decode(token, key, algorithms=ALGS, audience=AUDIENCE, issuer=ISSUER,
                                    options={"require": ["iss", "aud", "sub", "exp", "iat", "jti"]})
                self.check_claims(claims, jwt.get_unverified_header(token), agent, body)

    def test_s4_4_2_intent_token_claims_validated_with_joserfc(self):
        jwks = KeySet.import_key_set(httpx.get(metadata()["jwks_uri"], timeout=10).json())
        for kind in FX["agents"]:
            with self.subTest(kind=kind):
                body, agent = intent_token(kind)
                tok = jrfc_jwt.decode(body["access_token"], jwks, algorithms=ALGS)
                registry = jrfc_jwt.JWTClaimsRegistry(
                    iss={"essential": True, "value": ISSUER},
                    aud={"essential": True, "value": AUDIENCE},
                    sub={"essential": True, "value": agent["agent_id"]},
                    exp={"essential": True}, iat={"essential": True}, jti={"essential": True},
                    scope={"essential": True}, cnf={"essential": True},
                    intent={"essential": True}, agent_proof={"essential": True},
                )
                registry.validate(tok.claims)
                self.check_claims(tok.claims, tok.header, agent, body)


class Ed25519Issuer(unittest.TestCase):
    # Issue 11 item 1: `ajwt serve --signing-alg Ed25519`; joserfc knows the RFC 9864 name.
    def test_rfc9864_joserfc_verifies_ed25519_signed_client_token(self):
        ed = FX["servers"].get("issuer_ed25519") or {}
        self.assertTrue(ed.get("url"), f"issuer_ed25519 did not start: {ed.get('error')}")
        md = metadata(ed["issuer"])
        admin = ed["admin_client"]
        client = OAuth2Client(admin["client_id"], admin["client_secret"], timeout=30)
        token = client.fetch_token(md["token_endpoint"], grant_type="client_credentials")["access_token"]
        jwks = KeySet.import_key_set(httpx.get(md["jwks_uri"], timeout=10).json())
        tok = jrfc_jwt.decode(token, jwks, algorithms=["Ed25519"])
        self.assertEqual(tok.header["alg"], "Ed25519")
        jrfc_jwt.JWTClaimsRegistry(iss={"essential": True, "value": ed["issuer"]}).validate(tok.claims)


if __name__ == "__main__":
    unittest.main()


def status_bit(raw, idx):
    """draft-ietf-oauth-status-list §4.1, 1 bit per token, LSB first."""
    return (raw[idx // 8] >> (idx % 8)) & 1


class StatusListToken(unittest.TestCase):
    """Issue 13 (I-83, I-84, I-92): the status list token decoded by an
    independent decoder: PyJWT for the signature (the issuer's JWKS) and
    `typ`, zlib and base64 from the standard library for the list."""

    def fetch(self, uri):
        r = httpx.get(uri, timeout=10)
        r.raise_for_status()
        self.assertTrue(r.headers["content-type"].startswith("application/statuslist+jwt"),
                        r.headers["content-type"])
        token = r.text.strip()
        self.assertEqual(jwt.get_unverified_header(token)["typ"], "statuslist+jwt")
        key = jwt.PyJWKClient(metadata()["jwks_uri"]).get_signing_key_from_jwt(token)
        claims = jwt.decode(token, key, algorithms=ALGS, issuer=ISSUER,
                            options={"verify_aud": False, "require": ["sub", "iat", "exp"]})
        self.assertEqual(claims["sub"], uri, "§5.1: sub is the uri of the status list token")
        self.assertGreater(claims["ttl"], 0)
        lst = claims["status_list"]
        self.assertEqual(lst["bits"], 1)
        self.assertNotIn("=", lst["lst"], "base64url without padding")
        raw = zlib.decompress(base64.urlsafe_b64decode(lst["lst"] + "=" * (-len(lst["lst"]) % 4)))
        self.assertGreater(len(raw), 0)
        return raw

    def test_status_list_token_verified_with_pyjwt_decoded_with_zlib_and_revocation_sets_the_bit(self):
        body, _ = intent_token(next(iter(FX["agents"])))
        token = body["access_token"]
        ref = jwt.decode(token, options={"verify_signature": False})["status"]["status_list"]
        self.assertTrue(ref["uri"].startswith(ISSUER + "/"), ref["uri"])
        raw = self.fetch(ref["uri"])
        self.assertLess(ref["idx"], len(raw) * 8)
        self.assertEqual(status_bit(raw, ref["idx"]), 0, "VALID before the revocation")
        md = metadata()
        client = authlib_client()
        client.fetch_token(md["token_endpoint"], grant_type="client_credentials")
        r = client.post(md["revocation_endpoint"], data={"token": token})
        self.assertEqual(r.status_code, 200, r.text)
        # The issuer signs a fresh list on revocation (I-84).
        raw = self.fetch(ref["uri"])
        self.assertEqual(status_bit(raw, ref["idx"]), 1, "INVALID after the revocation")

