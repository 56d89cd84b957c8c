// RFC 8414 discovery with oauth4webapi (root and path issuers) and RFC 9728
// protected-resource discovery of the MCP server.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'
import { fx, insecure, discover, clientToken, server } from './lib.js'

test('rfc8414_s3_oauth4webapi_discovers_the_issuer', async () => {
  const as = await discover()
  assert.equal(as.issuer, fx.issuer)
  assert.equal(as.token_endpoint, `${fx.issuer}/intent/token`)
  assert.ok(as.jwks_uri)
  assert.ok(as.grant_types_supported.includes('client_credentials'))
  assert.deepEqual(as.token_endpoint_auth_methods_supported.sort(), ['client_secret_basic', 'client_secret_post'])
})

// Issue 11 item 5: metadata of `--issuer http://host/tenant1` at
// /.well-known/oauth-authorization-server/tenant1 (oauth4webapi only tries that form).
test('rfc8414_s3_1_path_issuer_metadata_at_inserted_well_known', async () => {
  const issuer = server('issuer_path').issuer
  const as = await discover(issuer)
  assert.equal(as.issuer, issuer)
  assert.ok(new URL(as.jwks_uri).pathname.startsWith(new URL(issuer).pathname + '/'),
    `jwks_uri ${as.jwks_uri} under the issuer's path`)
  const jwks = await (await fetch(as.jwks_uri)).json()
  assert.ok(jwks.keys.length >= 1)
  const token = await clientToken(as, 'basic', server('issuer_path').admin_client)
  assert.equal(token.token_type, 'bearer')
})

// Issue 11 items 1 and 6: RFC 9449 §5.1 dpop_signing_alg_values_supported, with the
// RFC 9864 fully-specified Ed25519 that oauth4webapi signs with.
test('rfc9449_s5_1_as_metadata_advertises_dpop_signing_algs_including_ed25519', async () => {
  const as = await discover()
  assert.ok(Array.isArray(as.dpop_signing_alg_values_supported), 'dpop_signing_alg_values_supported missing')
  for (const alg of ['Ed25519', 'ES256']) {
    assert.ok(as.dpop_signing_alg_values_supported.includes(alg), `${alg} not advertised`)
  }
})

test('rfc9728_s3_mcp_server_metadata_discovered_with_oauth4webapi', async () => {
  const mcp = server('mcp')
  const resource = new URL(mcp.audience)
  const rs = await oauth.processResourceDiscoveryResponse(
    resource, await oauth.resourceDiscoveryRequest(resource, insecure))
  assert.deepEqual(rs.authorization_servers, [fx.issuer])
  assert.equal(rs.dpop_bound_access_tokens_required, true)
  // Then RFC 8414 discovery of the authorization server it names.
  const as = await discover(rs.authorization_servers[0])
  assert.equal(as.issuer, fx.issuer)
})

// Issue 11 item 1: every DPoP algs list names Ed25519 (RFC 9864) beside EdDSA.
test('rfc9864_mcp_server_metadata_lists_ed25519_for_dpop', async () => {
  const mcp = server('mcp')
  const resource = new URL(mcp.audience)
  const rs = await oauth.processResourceDiscoveryResponse(
    resource, await oauth.resourceDiscoveryRequest(resource, insecure))
  for (const alg of ['Ed25519', 'EdDSA', 'ES256', 'PS256', 'RS256']) {
    assert.ok(rs.dpop_signing_alg_values_supported.includes(alg), `${alg} missing from ${rs.dpop_signing_alg_values_supported}`)
  }
})
