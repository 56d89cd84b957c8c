// Shared helpers of the Node interop tests: the fixtures written by
// conformance/interop/run.sh (setup.py), oauth4webapi discovery and
// client_credentials, the agent_checksum grant (JSON over a bearer-protected
// endpoint, draft §4.2: plain fetch, oauth4webapi has no call that sends JSON),
// and WebCrypto key pairs made from the agents' PEM keys.
import { readFileSync } from 'node:fs'
import { webcrypto } from 'node:crypto'
import * as oauth from 'oauth4webapi'

const { subtle } = webcrypto

const path = process.env.AJWT_INTEROP_FIXTURES
if (!path) {
  throw new Error('AJWT_INTEROP_FIXTURES is not set: run conformance/interop/run.sh')
}
/** The fixtures: issuer, admin client, agents, resource servers. */
export const fx = JSON.parse(readFileSync(path, 'utf8'))

/** oauth4webapi options for our loopback http:// servers. */
export const insecure = { [oauth.allowInsecureRequests]: true }

/** Fails with the reason a server from the fixtures did not start. */
export function server(name) {
  const s = fx.servers?.[name]
  if (!s || !s.url) {
    throw new Error(`${name} is not running: ${s?.error ?? 'not in the fixtures'}`)
  }
  return s
}

/** RFC 8414 discovery with oauth4webapi (`algorithm: 'oauth2'`). */
export async function discover(issuer = fx.issuer) {
  const url = new URL(issuer)
  const response = await oauth.discoveryRequest(url, { algorithm: 'oauth2', ...insecure })
  return oauth.processDiscoveryResponse(url, response)
}

/** A client token (client_credentials) for the bootstrap admin client. */
export async function clientToken(as, auth = 'basic', client = fx.admin_client) {
  const c = { client_id: client.client_id }
  const method = auth === 'basic' ? oauth.ClientSecretBasic : oauth.ClientSecretPost
  const response = await oauth.clientCredentialsGrantRequest(
    as, c, method(client.client_secret), new URLSearchParams(), insecure)
  return oauth.processClientCredentialsResponse(as, c, response)
}

/** POST JSON with a bearer token; returns {status, headers, body}. */
export async function postJson(url, token, body, extraHeaders = {}) {
  const r = await fetch(url, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...extraHeaders },
    body: JSON.stringify(body),
  })
  const text = await r.text()
  let json = null
  try { json = JSON.parse(text) } catch { json = text }
  return { status: r.status, headers: r.headers, body: json }
}

/**
 * The agent_checksum grant (draft §4.2.2) for `agent`, returned through
 * oauth4webapi's generic token-response processing (RFC 6749 §5.1 shape).
 */
export async function intentToken(as, bearer, request) {
  const r = await fetch(as.token_endpoint, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'agent_checksum', workflow_enabled: false, ...request }),
  })
  return oauth.processGenericTokenEndpointResponse(as, { client_id: fx.admin_client.client_id }, r)
}

/** An intent token for `kind`'s interop agent, no workflow, for the MCP server. */
export async function mcpToken(as, bearer, kind, audience = server('mcp').audience) {
  const a = fx.agents[kind]
  return intentToken(as, bearer, {
    agent_id: a.agent_id,
    computed_checksum: a.checksum,
    requested_scopes: ['vulnerability:read'],
    audience,
  })
}

let patcherKind = null
let patcherVersion = null
const used = {}
/**
 * An intent token for step 4 of the §6.3.3 workflow (what protected-api
 * requires). The step is assigned to vulnerability-patcher-v1, so a variant
 * holding `kind`'s key is registered first unless it is the latest
 * registration (§5.4.4: a new version; token requests are checked against the
 * latest one; a checksum registered before is duplicate_agent, so each
 * re-registration uses an unused variant).
 */
export async function patchToken(as, bearer, kind, audience = server('api').audience) {
  if (patcherKind !== kind) {
    const i = used[kind] ?? 0
    const v = fx.agents[kind].patcher_variants[i]
    if (!v) throw new Error(`no unused patcher variant left for ${kind}`)
    used[kind] = i + 1
    const r = await postJson(as.agent_registration_endpoint, bearer,
      { ...v.spec, public_key: fx.agents[kind].public_key_pem })
    if (r.status !== 200) {
      throw new Error(`re-registering the ${kind} patcher: ${r.status} ${JSON.stringify(r.body)}`)
    }
    patcherKind = kind
    patcherVersion = v
  }
  const v = patcherVersion
  return intentToken(as, bearer, {
    agent_id: v.agent_id,
    computed_checksum: v.checksum,
    workflow_id: 'auto-patch-workflow-v1',
    workflow_step: 'step_4_apply_patch',
    workflow_enabled: true,
    requested_scopes: ['repo:write'],
    audience,
    delegation_context: {
      chain: [],
      completed_steps: ['step_1_analyze_manifest', 'step_2_create_patch_plan', 'step_3_approval_gate'],
    },
  })
}

function pemToDer(pem) {
  const b64 = pem.replace(/-----[^-]+-----/g, '').replace(/\s+/g, '')
  return Buffer.from(b64, 'base64')
}

/** WebCrypto algorithm per DPoP alg (oauth4webapi derives the JWS alg from it). */
const ALGS = {
  Ed25519: { kind: 'ed25519', params: { name: 'Ed25519' } },
  ES256: { kind: 'es256', params: { name: 'ECDSA', namedCurve: 'P-256' } },
  PS256: { kind: 'rsa', params: { name: 'RSA-PSS', hash: 'SHA-256' } },
  RS256: { kind: 'rsa', params: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' } },
}
export const DPOP_ALGS = Object.keys(ALGS)
/** The fixture agent kind whose key signs `alg`. */
export const kindOf = (alg) => ALGS[alg].kind

/** The agent key of `alg` as a WebCrypto key pair (public key extractable). */
export async function keyPair(alg) {
  const { kind, params } = ALGS[alg]
  const a = fx.agents[kind]
  const privateKey = await subtle.importKey('pkcs8', pemToDer(a.private_key_pem), params, false, ['sign'])
  const publicKey = await subtle.importKey('spki', pemToDer(a.public_key_pem), params, true, ['verify'])
  return { privateKey, publicKey }
}

/** Decodes a JWS header or payload without verifying it. */
export function decodePart(jwt, i) {
  return JSON.parse(Buffer.from(jwt.split('.')[i], 'base64url').toString('utf8'))
}

/** The (single) `WWW-Authenticate` challenge of a response: {scheme (lower case), params}. */
export function challenge(headers) {
  const value = headers.get('www-authenticate')
  if (!value) return null
  const m = /^\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*(.*)$/s.exec(value)
  const params = {}
  const pr = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g
  let p
  while ((p = pr.exec(m[2])) !== null) params[p[1].toLowerCase()] = p[2] ?? p[3]
  return { scheme: m[1].toLowerCase(), params }
}
