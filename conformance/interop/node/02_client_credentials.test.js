// client_credentials (RFC 6749 §4.4) with oauth4webapi, both client
// authentication methods, the RFC 9068 access token checked with jose, and
// RFC 6749 §5.2 errors as oauth4webapi reports them.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import * as oauth from 'oauth4webapi'
import * as jose from 'jose'
import { fx, insecure, discover, clientToken } from './lib.js'

async function checkAccessToken(as, t) {
  assert.equal(t.token_type, 'bearer')
  assert.ok(t.expires_in > 0)
  assert.deepEqual(t.scope.split(' ').sort(), ['admin:intent', 'generate:intent-token', 'introspect:intent', 'register:intent'])
  const jwks = jose.createRemoteJWKSet(new URL(as.jwks_uri))
  const { payload, protectedHeader } = await jose.jwtVerify(t.access_token, jwks, {
    issuer: as.issuer, typ: 'at+jwt', requiredClaims: ['exp', 'iat', 'jti', 'sub', 'client_id'],
  })
  assert.equal(payload.client_id, fx.admin_client.client_id)
  assert.ok(protectedHeader.kid)
}

test('rfc6749_s4_4_client_credentials_client_secret_basic', async () => {
  const as = await discover()
  await checkAccessToken(as, await clientToken(as, 'basic'))
})

test('rfc6749_s4_4_client_credentials_client_secret_post', async () => {
  const as = await discover()
  await checkAccessToken(as, await clientToken(as, 'post'))
})

test('rfc6749_s5_2_wrong_client_secret_is_invalid_client', async () => {
  const as = await discover()
  const client = { client_id: fx.admin_client.client_id }
  const r = await oauth.clientCredentialsGrantRequest(
    as, client, oauth.ClientSecretBasic('not-the-secret'), new URLSearchParams(), insecure)
  await assert.rejects(oauth.processClientCredentialsResponse(as, client, r), (e) => {
    assert.ok(e instanceof oauth.WWWAuthenticateChallengeError || e instanceof oauth.ResponseBodyError, e)
    assert.equal(e.status, 401)
    if (e instanceof oauth.ResponseBodyError) assert.equal(e.error, 'invalid_client')
    return true
  })
})

// Issue 11 item 3: an unsupported grant with valid HTTP Basic credentials is
// 400 unsupported_grant_type, not a bearer-token challenge.
async function assertUnsupportedGrant(promise) {
  await assert.rejects(promise, (e) => {
    assert.ok(e instanceof oauth.ResponseBodyError,
      `expected an RFC 6749 §5.2 error body, got ${e.name}: ${e.message} ${JSON.stringify(e.cause)}`)
    assert.equal(e.status, 400)
    assert.equal(e.error, 'unsupported_grant_type')
    return true
  })
}

test('rfc6749_s5_2_password_grant_is_unsupported_grant_type', async () => {
  const as = await discover()
  const client = { client_id: fx.admin_client.client_id }
  const r = await oauth.genericTokenEndpointRequest(as, client,
    oauth.ClientSecretBasic(fx.admin_client.client_secret), 'password',
    { username: 'alice', password: 'secret' }, insecure)
  await assertUnsupportedGrant(oauth.processGenericTokenEndpointResponse(as, client, r))
})

test('rfc6749_s5_2_refresh_token_grant_is_unsupported_grant_type', async () => {
  const as = await discover()
  const client = { client_id: fx.admin_client.client_id }
  const r = await oauth.refreshTokenGrantRequest(as, client,
    oauth.ClientSecretBasic(fx.admin_client.client_secret), 'some-refresh-token', insecure)
  await assertUnsupportedGrant(oauth.processRefreshTokenResponse(as, client, r))
})
