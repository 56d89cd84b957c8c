"""Agent keys and DPoP proofs (RFC 9449 §4.2; draft-goswami-agentic-jwt-00 §9.2.2).

Every proof is checked by independent JOSE code: PyJWT verifies signatures
and decodes claims, `cryptography` reads the PEM keys and checks Ed25519
signatures under the RFC 9864 name; RFC 7638 and RFC 8037 give the
thumbprint examples; hashlib/base64 compute `ath` and thumbprints."""

import base64
import hashlib
import json
import pickle
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from hypothesis import given, settings
from hypothesis import strategies as st

from agentic_jwt import AgentJwtError, AgentKey, AgentKeyError, jwk_thumbprint

ALGS = ["ES256", "EdDSA", "Ed25519"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def rfc7638(jwk: dict) -> str:
    """RFC 7638 §3: required members, sorted, no whitespace, SHA-256, base64url."""
    required = {"EC": ["crv", "kty", "x", "y"], "OKP": ["crv", "kty", "x"], "RSA": ["e", "kty", "n"]}[jwk["kty"]]
    text = json.dumps({k: jwk[k] for k in required}, sort_keys=True, separators=(",", ":"))
    return b64url(hashlib.sha256(text.encode()).digest())


def verify_independently(proof: str) -> tuple:
    """(header, claims) of a DPoP proof, its signature verified by PyJWT (or by
    `cryptography` for the fully-specified Ed25519 name, RFC 9864)."""
    header = jwt.get_unverified_header(proof)
    if header["alg"] == "Ed25519":
        signing_input, _, signature = proof.rpartition(".")
        public = ed25519.Ed25519PublicKey.from_public_bytes(b64url_decode(header["jwk"]["x"]))
        public.verify(b64url_decode(signature), signing_input.encode())  # raises if invalid
        claims = json.loads(b64url_decode(signing_input.split(".")[1]))
    else:
        key = jwt.PyJWK(header["jwk"], algorithm=header["alg"])
        claims = jwt.decode(proof, key=key.key, algorithms=[header["alg"]], options={"verify_aud": False})
    return header, claims


# --- RFC 9449 §4.2 proofs ----------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_rfc9449_s4_2_proof_header_and_claims(alg):
    key = AgentKey.generate(alg)
    assert key.alg == alg
    before = int(time.time())
    proof = key.dpop_proof("POST", "https://API.Example.com:443/v1/../patches?x=1#frag")
    header, claims = verify_independently(proof)
    assert header == {"typ": "dpop+jwt", "alg": alg, "jwk": key.public_jwk()}
    assert "d" not in header["jwk"]
    assert claims["htm"] == "POST"
    assert claims["htu"] == "https://api.example.com/patches"  # §4.3 step 9: no query, no fragment
    assert before - 1 <= claims["iat"] <= int(time.time()) + 1
    assert len(b64url_decode(claims["jti"])) >= 16
    assert "ath" not in claims and "nonce" not in claims


def test_rfc9449_s4_2_ath_and_nonce():
    key = AgentKey.generate()
    token = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln"
    proof = key.dpop_proof("GET", "https://rs.example/x", access_token=token, nonce="n-0S6_WzA2Mj")
    _, claims = verify_independently(proof)
    assert claims["ath"] == b64url(hashlib.sha256(token.encode("ascii")).digest())
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    _, fixed = verify_independently(key.dpop_proof("GET", "https://rs.example/x", iat=1_700_000_000))
    assert fixed["iat"] == 1_700_000_000


def test_rfc9449_s4_2_every_proof_has_a_fresh_jti():
    key = AgentKey.generate()
    jtis = {verify_independently(key.dpop_proof("GET", "https://rs.example/"))[1]["jti"] for _ in range(50)}
    assert len(jtis) == 50


def test_rfc9449_proof_arguments_refused_with_agent_key_error():
    key = AgentKey.generate()
    for method, url in [("GET POST", "https://rs.example/"), ("", "https://rs.example/"),
                        ("GET", "ftp://rs.example/"), ("GET", "not a url"), ("GET", "https://u:p@rs.example/")]:
        with pytest.raises(AgentKeyError):
            key.dpop_proof(method, url)


# --- RFC 7638 thumbprints --------------------------------------------------------


def test_rfc7638_s3_1_example_thumbprint():
    # RFC 7638 §3.1: the RSA key of RFC 7517 Appendix A.1 and its thumbprint.
    jwk = {
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
        "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQ"
        "MicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRw"
        "r3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29",
    }
    assert jwk_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    assert jwk_thumbprint(json.dumps(jwk)) == jwk_thumbprint(json.dumps(jwk).encode())
    assert rfc7638(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"  # the oracle agrees


def test_rfc8037_a_ed25519_private_jwk_and_thumbprint():
    # RFC 8037 Appendix A.1 (the key) and A.3 (its RFC 7638 thumbprint).
    jwk = {"kty": "OKP", "crv": "Ed25519",
           "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
           "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    key = AgentKey.from_jwk(jwk)
    assert key.alg == "EdDSA"
    assert key.public_jwk() == {"kty": "OKP", "crv": "Ed25519", "x": jwk["x"]}
    assert key.thumbprint() == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"
    assert AgentKey.from_jwk(jwk, alg="Ed25519").alg == "Ed25519"
    verify_independently(key.dpop_proof("GET", "https://rs.example/"))


@pytest.mark.parametrize("alg", ALGS)
def test_rfc7638_thumbprint_of_generated_keys(alg):
    key = AgentKey.generate(alg)
    assert key.thumbprint() == rfc7638(key.public_jwk()) == jwk_thumbprint(key.public_jwk())


# --- loading keys ----------------------------------------------------------------


@pytest.mark.parametrize("alg", ALGS)
def test_pkcs8_pem_round_trip_read_by_cryptography(alg):
    key = AgentKey.generate(alg)
    pem = key.private_pem()
    assert pem.startswith("-----BEGIN PRIVATE KEY-----")
    loaded = serialization.load_pem_private_key(pem.encode(), password=None)
    jwk = key.public_jwk()
    if alg == "ES256":
        numbers = loaded.public_key().public_numbers()
        assert isinstance(loaded, ec.EllipticCurvePrivateKey) and loaded.curve.name == "secp256r1"
        assert b64url(numbers.x.to_bytes(32, "big")) == jwk["x"]
        assert b64url(numbers.y.to_bytes(32, "big")) == jwk["y"]
    else:
        raw = loaded.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        assert b64url(raw) == jwk["x"]
    again = AgentKey.from_pem(pem, alg=alg)
    assert again == key and again.thumbprint() == key.thumbprint()
    assert AgentKey.from_pem(pem.encode(), alg=alg) == key


def test_keys_made_by_cryptography_load_from_pem_and_jwk():
    private = ec.generate_private_key(ec.SECP256R1())
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(private))
    from_pem, from_jwk = AgentKey.from_pem(pem), AgentKey.from_jwk(jwk)
    assert from_pem.alg == from_jwk.alg == "ES256"
    assert from_pem.thumbprint() == from_jwk.thumbprint() == rfc7638(jwk)
    _, claims = verify_independently(from_jwk.dpop_proof("GET", "https://rs.example/"))
    assert claims["htm"] == "GET"


def test_bad_keys_raise_agent_key_error():
    es = AgentKey.generate("ES256")
    ed_jwk = {"kty": "OKP", "crv": "Ed25519", "d": "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A",
              "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    other_x = AgentKey.generate("EdDSA").public_jwk()["x"]
    cases = [
        lambda: AgentKey.generate("HS256"),
        lambda: AgentKey.generate("none"),
        lambda: AgentKey.from_pem("not a pem"),
        lambda: AgentKey.from_pem(es.private_pem().replace("A", "B", 5)),
        lambda: AgentKey.from_pem(es.private_pem(), alg="EdDSA"),  # P-256 key, Ed25519 alg
        lambda: AgentKey.from_pem(12),
        lambda: AgentKey.from_jwk(es.public_jwk()),  # public only: nothing to sign with
        lambda: AgentKey.from_jwk(dict(ed_jwk, x=other_x)),  # d does not match x
        lambda: AgentKey.from_jwk(dict(ed_jwk, alg="ES256")),
        lambda: AgentKey.from_jwk(ed_jwk, alg="RS256"),
        lambda: AgentKey.from_jwk(dict(ed_jwk, kty="oct", k="AAAA")),
        lambda: AgentKey.from_jwk('{"kty": "OKP", "kty": "OKP"}'),  # duplicate member (strict reader)
        lambda: AgentKey.from_jwk({"kty": "EC", "crv": "P-256", "d": "AA", "x": "AA", "y": "AA"}),
        lambda: AgentKey.from_jwk({"kty": 1, "d": float("nan")}),
        lambda: jwk_thumbprint({"kty": "XYZ"}),
    ]
    for case in cases:
        with pytest.raises(AgentKeyError):
            case()
    assert issubclass(AgentKeyError, AgentJwtError)


def test_agent_key_repr_and_pickle_never_leak_the_private_key():
    key = AgentKey.generate()
    assert "PRIVATE" not in repr(key) and key.thumbprint() in repr(key)
    with pytest.raises(TypeError):
        pickle.dumps(key)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300),
                 st.dictionaries(st.sampled_from(["kty", "crv", "d", "x", "y", "n", "e", "alg"]),
                                 st.one_of(st.text(max_size=50), st.integers(), st.none()))))
def test_garbage_keys_never_panic(doc):
    for load in (AgentKey.from_pem, AgentKey.from_jwk, jwk_thumbprint):
        try:
            load(doc)
        except AgentKeyError:
            pass
