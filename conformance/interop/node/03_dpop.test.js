// DPoP (RFC 9449) calls made by oauth4webapi to protected-api and mcp-server
// with Ed25519 (oauth4webapi signs it as alg "Ed25519", RFC 9864), ES256,
// PS256 and RS256 agent keys, with and without server nonces (§8-§9), and the
// §7.1/§7.2 presentation rules.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'
import {
  fx, insecure, discover, clientToken, server, patchToken, mcpToken, keyPair, kindOf,
  DPOP_ALGS, decodePart, challenge,
} from './lib.js'

const as = await discover()
const bearer = (await clientToken(as)).access_token
const JSON_HEADERS = () => new Headers({ 'content-type': 'application/json' })

async function callApi(name, token, dpop) {
  return oauth.protectedResourceRequest(token, 'POST', new URL(`${server(name).url}/patches`),
    JSON_HEADERS(), '{}', { DPoP: dpop, ...insecure })
}

let rpcId = 0
async function callMcp(name, token, dpop) {
  const body = JSON.stringify({
    jsonrpc: '2.0', id: ++rpcId, method: 'tools/call',
    params: { name: 'read_manifest', arguments: { file_path: 'package.json' } },
  })
  return oauth.protectedResourceRequest(token, 'POST', new URL(`${server(name).url}/mcp`),
    JSON_HEADERS(), body, { DPoP: dpop, ...insecure })
}

async function expectPatchApplied(response, jkt) {
  const text = await response.text()
  assert.equal(response.status, 200, text)
  const body = JSON.parse(text)
  assert.equal(body.status, 'patch applied')
  assert.equal(body.applied_by, 'vulnerability-patcher-v1')
  assert.equal(body.proof_key, jkt)
}

async function expectToolResult(response) {
  const text = await response.text()
  assert.equal(response.status, 200, text)
  const body = JSON.parse(text)
  assert.equal(body.error, undefined, text)
  assert.equal(body.result.isError, false)
}

/** Calls once without a nonce: a nonce server answers use_dpop_nonce, oauth4webapi keeps the nonce, the retry succeeds. */
async function withNonceRetry(call) {
  try {
    const r = await call()
    assert.fail(`first call without a nonce should be refused with use_dpop_nonce, got ${r.status}`)
  } catch (e) {
    assert.ok(oauth.isDPoPNonceError(e), `expected use_dpop_nonce, got ${e.name}: ${e.message} ${JSON.stringify(e.cause)}`)
  }
  return call()
}

for (const alg of DPOP_ALGS) {
  const kind = kindOf(alg)

  test(`rfc9449_dpop_${alg}_protected_api_accepts_oauth4webapi_proof`, async () => {
    const { access_token } = await patchToken(as, bearer, kind)
    const dpop = oauth.DPoP({}, await keyPair(alg))
    await expectPatchApplied(await callApi('api', access_token, dpop), await dpop.calculateThumbprint())
  })

  test(`rfc9449_dpop_${alg}_mcp_server_accepts_oauth4webapi_proof`, async () => {
    const { access_token } = await mcpToken(as, bearer, kind)
    const dpop = oauth.DPoP({}, await keyPair(alg))
    await expectToolResult(await callMcp('mcp', access_token, dpop))
  })

  // Issue 11 item 7 (protected-api --dpop-nonce).
  test(`rfc9449_s9_dpop_${alg}_protected_api_server_nonce_then_fresh_nonces`, async () => {
    const { access_token } = await patchToken(as, bearer, kind)
    const dpop = oauth.DPoP({}, await keyPair(alg))
    const jkt = await dpop.calculateThumbprint()
    const first = await withNonceRetry(() => callApi('api_nonce', access_token, dpop))
    assert.ok(first.headers.get('dpop-nonce'), 'a successful response carries DPoP-Nonce (RFC 9449 §8.2)')
    await expectPatchApplied(first, jkt)
    for (let i = 0; i < 3; i++) {
      // No failed request after the first: oauth4webapi sends the nonce of the last response.
      await expectPatchApplied(await callApi('api_nonce', access_token, dpop), jkt)
    }
  })

  // Issue 11 item 7 (mcp-server --dpop-nonce).
  test(`rfc9449_s9_dpop_${alg}_mcp_server_server_nonce_then_fresh_nonces`, async () => {
    const { access_token } = await mcpToken(as, bearer, kind, server('mcp_nonce').audience)
    const dpop = oauth.DPoP({}, await keyPair(alg))
    const first = await withNonceRetry(() => callMcp('mcp_nonce', access_token, dpop))
    assert.ok(first.headers.get('dpop-nonce'), 'a successful response carries DPoP-Nonce (RFC 9449 §8.2)')
    await expectToolResult(first)
    for (let i = 0; i < 3; i++) {
      await expectToolResult(await callMcp('mcp_nonce', access_token, dpop))
    }
  })
}

test('rfc9864_oauth4webapi_signs_ed25519_proofs_with_the_fully_specified_name', async () => {
  // The reason item 1 exists: what oauth4webapi 3.8 actually puts in the proof header.
  const dpop = oauth.DPoP({}, await keyPair('Ed25519'))
  const headers = new Headers()
  await dpop.addProof(new URL(`${server('api').url}/patches`), headers, 'POST', 'token')
  const header = decodePart(headers.get('dpop'), 0)
  assert.equal(header.alg, 'Ed25519')
  assert.equal(header.typ, 'dpop+jwt')
})

test('rfc9449_s7_1_required_policy_challenges_a_bearer_presentation_with_dpop_scheme_and_algs', async () => {
  const { access_token } = await patchToken(as, bearer, 'es256')
  const r = await fetch(`${server('api').url}/patches`, {
    method: 'POST', headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' }, body: '{}',
  })
  assert.equal(r.status, 401)
  const c = challenge(r.headers)
  assert.equal(c?.scheme, 'dpop', `challenge ${r.headers.get('www-authenticate')}`)
  const algs = (c.params.algs ?? '').split(' ')
  for (const alg of ['Ed25519', 'ES256']) assert.ok(algs.includes(alg), `algs=${c.params.algs} lacks ${alg}`)
})

// Issue 11 item 4: "MUST reject a DPoP-bound access token received as a bearer token".
test('rfc9449_s7_2_optional_policy_refuses_a_dpop_bound_token_presented_as_bearer', async () => {
  const { access_token } = await patchToken(as, bearer, 'es256', server('api_optional').audience)
  assert.ok(decodePart(access_token, 1).cnf, 'intent tokens are cnf-bound')
  const r = await fetch(`${server('api_optional').url}/patches`, {
    method: 'POST', headers: { authorization: `Bearer ${access_token}`, 'content-type': 'application/json' }, body: '{}',
  })
  assert.equal(r.status, 401, await r.text())
})

test('rfc9449_optional_policy_accepts_the_dpop_presentation', async () => {
  const { access_token } = await patchToken(as, bearer, 'es256', server('api_optional').audience)
  const dpop = oauth.DPoP({}, await keyPair('ES256'))
  await expectPatchApplied(await callApi('api_optional', access_token, dpop), await dpop.calculateThumbprint())
})

test('rfc9449_proof_by_another_key_is_refused_with_a_dpop_challenge', async () => {
  const { access_token } = await patchToken(as, bearer, 'es256')
  const thief = oauth.DPoP({}, await oauth.generateKeyPair('ES256', { extractable: true }))
  await assert.rejects(callApi('api', access_token, thief), (e) => {
    assert.ok(e instanceof oauth.WWWAuthenticateChallengeError, e)
    assert.equal(e.status, 401)
    assert.equal(e.cause[0].scheme, 'dpop')
    assert.equal(e.cause[0].parameters.error, 'invalid_dpop_proof')
    return true
  })
})

test('rfc9728_s5_1_mcp_server_unauthenticated_call_names_its_resource_metadata', async () => {
  const r = await fetch(`${server('mcp').url}/mcp`, {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' }),
  })
  assert.equal(r.status, 401)
  const c = challenge(r.headers)
  assert.equal(c.params.resource_metadata, `${server('mcp').url}/.well-known/oauth-protected-resource`)
})

/** The agent_checksum grant for `kind`'s agent with a DPoP proof made by `dpop` (RFC 9449 §5). */
async function tokenRequestWithProof(kind, dpop) {
  const headers = new Headers({ authorization: `Bearer ${bearer}`, 'content-type': 'application/json' })
  await dpop.addProof(new URL(as.token_endpoint), headers, 'POST')
  const a = fx.agents[kind]
  const r = await fetch(as.token_endpoint, {
    method: 'POST', headers,
    body: JSON.stringify({
      grant_type: 'agent_checksum', agent_id: a.agent_id, computed_checksum: a.checksum,
      workflow_enabled: false, requested_scopes: ['vulnerability:read'], audience: server('mcp').audience,
    }),
  })
  return { status: r.status, body: await r.json() }
}

// Issue 11 item 6: a proof at the token endpoint is verified and must be made by the registered key.
test('rfc9449_s5_token_request_with_a_proof_by_the_registered_key_is_served', async () => {
  const r = await tokenRequestWithProof('es256', oauth.DPoP({}, await keyPair('ES256')))
  assert.equal(r.status, 200, JSON.stringify(r.body))
  assert.ok(r.body.access_token)
})

test('rfc9449_s5_token_request_with_a_proof_by_another_key_is_invalid_dpop_proof', async () => {
  const other = oauth.DPoP({}, await oauth.generateKeyPair('ES256', { extractable: true }))
  const r = await tokenRequestWithProof('es256', other)
  assert.equal(r.status, 400, JSON.stringify(r.body))
  assert.equal(r.body.error, 'invalid_dpop_proof')
})
