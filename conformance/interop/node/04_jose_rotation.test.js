// panva jose validating our tokens against the issuer's JWKS
// (createRemoteJWKSet + jwtVerify), across an issuer key rotation
// (POST /intent/admin/rotate-keys), and tokens signed under the RFC 9864 name
// Ed25519 (`ajwt serve --signing-alg Ed25519`). Runs last: it rotates the key.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import * as jose from 'jose'
import { fx, discover, clientToken, server, mcpToken, postJson, decodePart } from './lib.js'

const as = await discover()
const bearer = (await clientToken(as)).access_token
const h16 = (s) => createHash('sha256').update(s).digest('hex').slice(0, 16)

async function verifyIntent(token, jwks) {
  return jose.jwtVerify(token, jwks, {
    issuer: fx.issuer,
    audience: server('mcp').audience,
    typ: 'JWT',
    algorithms: ['ES256', 'EdDSA', 'Ed25519', 'RS256', 'PS256'],
    requiredClaims: ['iss', 'aud', 'sub', 'exp', 'iat', 'jti', 'scope', 'cnf', 'intent', 'agent_proof'],
  })
}

test('rfc7517_jose_verifies_an_intent_token_against_the_remote_jwks', async () => {
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri))
  const { access_token } = await mcpToken(as, bearer, 'ed25519')
  const { payload, protectedHeader } = await verifyIntent(access_token, jwks)
  const agent = fx.agents.ed25519
  assert.equal(payload.sub, agent.agent_id)
  assert.equal(payload.scope, 'vulnerability:read')
  assert.equal(payload.intent.executed_by, agent.agent_id)
  assert.equal(payload.intent.delegation_chain, h16(agent.agent_id), '§4.4.4 over the full chain (I-16)')
  assert.equal(payload.agent_proof.agent_checksum, agent.checksum)
  // cnf.jwk is the registered key; its RFC 7638 thumbprint as computed by jose.
  const registered = await jose.exportJWK(await jose.importSPKI(agent.public_key_pem, 'EdDSA', { extractable: true }))
  assert.equal(payload.cnf.jwk.x, registered.x)
  assert.equal(payload.cnf.jwk.kid, await jose.calculateJwkThumbprint(registered))
  assert.ok(protectedHeader.kid)
})

test('rfc7517_jose_verifies_tokens_across_an_issuer_key_rotation', async () => {
  // cooldownDuration 0: refetch as soon as an unknown kid appears.
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri), { cooldownDuration: 0 })
  const before = (await mcpToken(as, bearer, 'es256')).access_token
  const oldKid = decodePart(before, 0).kid
  await verifyIntent(before, jwks)

  const r = await postJson(as.ajwt_admin_rotate_keys_endpoint, bearer, {})
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.equal(r.body.previous_kid, oldKid)
  assert.notEqual(r.body.kid, oldKid)

  // Publish-then-sign (I-90; run.sh starts the issuer with a 2 s delay):
  // the new key is in the JWKS at once, the old key signs until activates_at.
  assert.equal(r.body.state, 'next', JSON.stringify(r.body))
  const published = await (await fetch(as.jwks_uri)).json()
  assert.ok(published.keys.some((k) => k.kid === r.body.kid), 'the new key is published before it signs')
  const meanwhile = (await mcpToken(as, bearer, 'es256')).access_token
  if (Date.now() / 1000 < r.body.activates_at - 0.5) {
    assert.equal(decodePart(meanwhile, 0).kid, oldKid, 'the old key signs until activates_at')
  }
  await new Promise((resolve) => setTimeout(resolve, (r.body.activates_at + 1) * 1000 - Date.now()))

  const after = (await mcpToken(as, bearer, 'es256')).access_token
  assert.equal(decodePart(after, 0).kid, r.body.kid, 'new tokens are signed with the new key')
  await verifyIntent(after, jwks)
  await verifyIntent(before, jwks) // the previous key stays published
  const set = await (await fetch(as.jwks_uri)).json()
  const kids = set.keys.map((k) => k.kid)
  assert.ok(kids.includes(oldKid) && kids.includes(r.body.kid), `JWKS kids ${kids}`)
  // A verifier that never saw the old key fetches once and knows both.
  const fresh = jose.createRemoteJWKSet(new URL(as.jwks_uri))
  await verifyIntent(before, fresh)
  await verifyIntent(after, fresh)
})

// Issue 11 item 1: `ajwt serve --signing-alg Ed25519` signs with alg "Ed25519".
test('rfc9864_issuer_signs_tokens_with_alg_ed25519_verified_by_jose', async () => {
  const ed = server('issuer_ed25519')
  const edAs = await discover(ed.issuer)
  const t = await clientToken(edAs, 'basic', ed.admin_client)
  assert.equal(decodePart(t.access_token, 0).alg, 'Ed25519')
  const jwks = jose.createRemoteJWKSet(new URL(edAs.jwks_uri))
  const { protectedHeader } = await jose.jwtVerify(t.access_token, jwks, {
    issuer: ed.issuer, typ: 'at+jwt', algorithms: ['Ed25519'],
  })
  assert.equal(protectedHeader.alg, 'Ed25519')
  const set = await (await fetch(edAs.jwks_uri)).json()
  assert.ok(set.keys.some((k) => k.kid === protectedHeader.kid && k.crv === 'Ed25519'))
  assert.ok(edAs.intent_token_signing_alg_values_supported?.includes('Ed25519'))
})
