// OpenAPI 3.1 descriptions of the pod and host listeners (docs/protocol.md#http-api), generated from the zod schemas
// below with zod's own `z.toJSONSchema` (JSON Schema 2020-12, the dialect of OpenAPI 3.1). The routes themselves are
// plain hono handlers; the tests check that what each route answers parses with its schema here, so the document
// cannot drift from the code unnoticed. Served at `/openapi.json` on each listener (the pod document without
// authentication: it is public knowledge; the host document behind the host token), and committed as
// docs/openapi/pod.json and docs/openapi/host.json (`npm run openapi` regenerates them).
import { z } from 'zod'
import { ERROR_STATUS } from '../errors.ts'

const hex0x = (bytes: number, what: string) =>
  z.string().regex(new RegExp(`^0x[0-9a-fA-F]{${bytes * 2}}$`)).describe(`${what}: 0x and ${bytes * 2} hex digits`)
const hexPlain = (what: string) => z.string().regex(/^([0-9a-f]{2})*$/).describe(`${what}: lowercase hex, no 0x (dstack wire form)`)
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/).describe('Ethereum address, checksummed')
const nodeState = z.enum(['uninitialized', 'bootstrapping', 'registering', 'ready'])
const uint = z.number().int().min(0)
const decimal = z.string().regex(/^[0-9]+$/).describe('unsigned integer in decimal')

// ---- shared ----------------------------------------------------------------------------------------------------

export const errorSchema = z
  .looseObject({
    error: z.looseObject({
      code: z.enum(Object.keys(ERROR_STATUS) as [keyof typeof ERROR_STATUS, ...(keyof typeof ERROR_STATUS)[]]),
      message: z.string(),
    }),
  })
  .describe('Every error of our own routes: a code from a closed list, and a message (never a stack trace)')

export const dstackErrorSchema = z.object({ error: z.string() }).describe('dstack guest-agent error shape (the SDK looks for the key)')

// ---- generations (host listener)

export const rotationStepSchema = z.looseObject({ proposal: z.string(), generation: z.string(), tx: z.looseObject({}) })
export const rotationStatusSchema = z.looseObject({
  generation: z.string(),
  held: z.array(uint),
  current: uint,
  memberId: z.string().nullable(),
  memberStatus: z.string().nullable(),
  memberCount: z.string(),
  rotation: z.looseObject({ open: z.boolean(), emergency: z.boolean() }),
  proposal: z.looseObject({ id: z.string(), acks: uint, quorum: uint }).nullable(),
})

// ---- pod listener ----------------------------------------------------------------------------------------------

export const healthzSchema = z.object({ ok: z.literal(true), state: nodeState })
export const sealkeySchema = z.object({
  key: hex0x(32, 'the pod seal key'),
  appId: hex0x(20, 'the pod appId'),
  generation: uint.describe('master secret generation the key derives from'),
  revoked: z.literal(true).optional().describe('present when the registry revoked this generation (its keys still derive; nothing vouches for them)'),
})
export const generationsSchema = z.object({
  current: uint.describe('the generation /sealkey serves'),
  generations: z.array(
    z.object({
      generation: uint,
      xPub: address.describe("the generation's master key address"),
      current: z.boolean(),
      revoked: z.boolean(),
      purged: z.boolean().describe('purged: erased on every node, /sealkey?generation answers 410'),
      retiresAt: uint.describe('unix seconds from which an older generation stops verifying; 0 while current'),
      held: z.boolean().describe('whether this node holds its secret'),
    }),
  ),
})
export const attestSchema = z.object({
  hostname: z.string().describe('the pod name, as signed'),
  appData: hex0x(32, 'the app data, as signed'),
  signature: hex0x(65, 'EIP-712 signature r‖s‖v by the master key'),
  signer: address.describe('xPub: the master key address'),
  registry: address,
  chainId: z.number().int().positive(),
  generation: uint.describe('the generation whose master key signed'),
})
export const getKeyRequestSchema = z.looseObject({
  path: z.string().max(1024).optional(),
  purpose: z.string().max(1024).optional(),
  algorithm: z.enum(['secp256k1', 'k256', 'ed25519']).optional(),
})
export const getKeySchema = z.object({ key: hexPlain('derived private key'), signature_chain: z.array(hexPlain('65-byte signature')) })
export const getQuoteRequestSchema = z.looseObject({ report_data: z.string().regex(/^([0-9a-fA-F]{2}){0,64}$/).optional() })
export const getQuoteSchema = z.object({
  quote: hexPlain('DCAP quote'),
  event_log: z.string().describe('JSON text of the event log'),
  report_data: hexPlain('the 64 report-data bytes, zero-padded'),
  vm_config: z.string(),
})
export const infoSchema = z.looseObject({
  app_id: hexPlain('the pod appId'),
  instance_id: hexPlain('dstack instance id of this TEE (empty when no quote is available)'),
  app_cert: z.string().describe('PEM of the app CA certificate (docs/protocol.md#dstack-api); "" until the node is ready'),
  tcb_info: z
    .string()
    .describe('JSON text: mrtd, rtmr0-3, mr_aggregated, os_image_hash, compose_hash, device_id, app_compose and the event log of this TEE'),
  app_name: z.string().describe('the pod name'),
  device_id: z.string().describe('dstack device id as the dstack agent gives it; "" on other platforms'),
  mr_aggregated: hexPlain('dstack aggregated measurement').optional(),
  os_image_hash: hexPlain('dstack OS image hash').optional(),
  key_provider_info: z.string().describe('JSON text: {name, id, chain_id, registry, settings_digest, xpub, generation}'),
  compose_hash: hexPlain('dstack compose hash'),
  vm_config: z.string().optional(),
  cloud_vendor: z.string().optional(),
  cloud_product: z.string().optional(),
})
export const getTlsKeyRequestSchema = z.looseObject({
  path: z.string().max(1024).optional().describe('derive the leaf key from this path (same on every node); absent or "" for a fresh key'),
  subject: z.string().max(256).optional(),
  alt_names: z.array(z.string().max(253)).max(32).optional().describe('DNS names or IP addresses'),
  usage_ra_tls: z.boolean().optional().describe('embed a quote binding the leaf key and the event log'),
  usage_server_auth: z.boolean().optional(),
  usage_client_auth: z.boolean().optional(),
  not_before: uint.optional().describe('unix seconds'),
  not_after: uint.optional().describe('unix seconds'),
  with_app_info: z.boolean().optional(),
})
export const getTlsKeySchema = z.object({
  key: z.string().describe('PEM PKCS#8 P-256 private key of the leaf'),
  certificate_chain: z.array(z.string()).length(2).describe('PEM certificates: [leaf, app CA]; pin the app CA'),
})
export const attestRequestSchema = getQuoteRequestSchema
export const attestationSchema = z.object({ attestation: hexPlain("dstack's SCALE versioned attestation (TDX)") })
export const emitEventRequestSchema = z.looseObject({
  event: z.string().max(1024).optional().describe('event name, recorded as <appId hex>:<event>'),
  payload: hexPlain('event payload').optional(),
})
export const emitEventSchema = z.object({}).strict().describe('protobuf Empty: RTMR3 was extended, the measurement id of every later quote changes')
const signAlgorithm = z.enum(['ed25519', 'secp256k1', 'secp256k1_prehashed'])
export const signRequestSchema = z.looseObject({
  algorithm: signAlgorithm.optional(),
  data: hexPlain('data to sign (secp256k1_prehashed: a 32-byte digest)').optional(),
})
export const signSchema = z.object({
  signature: hexPlain('signature (secp256k1: r‖s, 64 bytes; ed25519: 64 bytes)'),
  signature_chain: z.array(hexPlain('signature')).length(3).describe('[signature, GetKey("vms","signing") chain: app signature, KMS signature]'),
  public_key: hexPlain('public key of the signing key (secp256k1 compressed, ed25519 32 bytes)'),
})
export const verifyRequestSchema = z.looseObject({
  algorithm: signAlgorithm.optional(),
  data: hexPlain('signed data').optional(),
  signature: hexPlain('signature').optional(),
  public_key: hexPlain('public key').optional(),
})
export const verifySchema = z.object({ valid: z.boolean() })
export const versionSchema = z.object({ version: z.string(), rev: z.string() })

// ---- host listener ---------------------------------------------------------------------------------------------

const unsignedTx = z.object({
  to: address,
  data: z.string().regex(/^0x([0-9a-fA-F]{2})*$/),
  blobs: z.array(z.string()).optional(),
  chainId: z.number().int().positive(),
})
export const bootstrapSchema = z
  .looseObject({ state: nodeState, xPub: address, generation: uint.optional(), tx: unsignedTx.optional(), next: z.string().optional() })
  .describe('Either done (generation set, txHash when the node sent it) or a tx for the registry owner to send, then call again')
export const registerSchema = z.looseObject({
  state: nodeState,
  enckey: address.describe('address of the registration key: the argument of /register/{enckey}'),
  pubkey64: z.string(),
  requestId: decimal.nullable(),
  txHash: z.string().optional(),
  tx: unsignedTx.optional(),
})
export const completeSchema = z.looseObject({ state: nodeState, xPub: address, generation: uint, requestId: decimal, confirm: z.looseObject({}) })
export const escrowSchema = z.looseObject({
  guardianSet: decimal,
  threshold: uint,
  count: uint,
  generations: z.array(z.looseObject({ generation: uint, status: z.enum(['published', 'escrowed', 'skipped']), reason: z.string().optional() })),
})
export const recoverSchema = z.looseObject({ state: z.enum(['recovered', 'pending']), requestId: decimal })
export const helpSchema = z.looseObject({ requestId: decimal, decision: z.literal('fulfilled') })
export const statusSchema = z.looseObject({
  state: nodeState,
  xPub: address.nullable(),
  generation: uint,
  registry: address,
  chainId: z.number().int().positive(),
  fingerprint: z.string().nullable(),
  quoteProvider: z.string(),
  sealProvider: z.string(),
  registration: z.looseObject({ enckey: address, requestId: decimal.nullable(), status: z.string() }).nullable(),
  requests: z.array(
    z.looseObject({
      requestId: decimal,
      requester: z.string(),
      decision: z.enum(['fulfilled', 'refused', 'pending']),
      reason: z.string().nullable().describe('refusal reason code (docs/protocol.md#help)'),
      message: z.string().nullable(),
      measurementId: z.string().nullable(),
      fulfillTx: z.string().nullable(),
    }),
  ),
  gasSpent: z
    .looseObject({
      byLabel: z.record(z.string(), z.looseObject({ txs: uint, gasUsed: decimal, blobGasUsed: decimal, feesWei: decimal })),
      perOnboarding: z.looseObject({
        asNewcomer: z.looseObject({ onboardings: uint, gasUsed: decimal, blobGasUsed: decimal, feesWei: decimal }).nullable(),
        asHelper: z.looseObject({ onboardings: uint, gasUsed: decimal, blobGasUsed: decimal, feesWei: decimal }).nullable(),
      }),
    })
    .nullable()
    .describe('gas, blob gas and fees (wei) of the mined transactions this node sent since it started, by label and per onboarding; null without a gas key'),
})

// ---- document assembly -----------------------------------------------------------------------------------------

type Schema = z.ZodType

function jsonSchema(schema: Schema): Record<string, unknown> {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { target: 'draft-2020-12', io: 'output', unrepresentable: 'any' }) as Record<string, unknown>
  return rest
}

const json = (schema: Schema | { $ref: string }) => ({ 'application/json': { schema: schema instanceof z.ZodType ? jsonSchema(schema) : schema } })

type Responses = Record<string, { description: string; content?: Record<string, { schema: unknown }> }>

function errors(codes: number[], ref = '#/components/schemas/Error'): Responses {
  const out: Responses = {}
  for (const code of codes) out[String(code)] = { description: describeStatus(code), content: json({ $ref: ref }) }
  return out
}

function describeStatus(code: number): string {
  const name = Object.entries(ERROR_STATUS).find(([, status]) => status === code)?.[0]
  return name ? `error: ${name}` : `HTTP ${code}`
}

type Operation = {
  summary: string
  description?: string
  tags?: string[]
  parameters?: unknown[]
  requestBody?: unknown
  responses: Responses
  security?: Record<string, string[]>[]
}

const pathParameter = (name: string, description: string, pattern: string) => ({
  name,
  in: 'path',
  required: true,
  description,
  schema: { type: 'string', pattern },
})

function document(info: { title: string; description: string }, paths: Record<string, Record<string, Operation>>, extra: Record<string, unknown> = {}) {
  return {
    openapi: '3.1.0',
    info: { ...info, version: '1' },
    ...extra,
    paths,
    components: {
      ...((extra.components as Record<string, unknown>) ?? {}),
      schemas: { Error: jsonSchema(errorSchema), DstackError: jsonSchema(dstackErrorSchema) },
    },
  }
}

/** A dstack route: 400/403/413/503/500 on every one, plus `more` (409 pod event limit, 422 not on this TEE, 502 the TEE interface failed). */
const dstackRoute = (summary: string, request: Schema | null, response: Schema, more: number[] = []): Record<string, Operation> => ({
  post: {
    summary,
    tags: ['dstack'],
    ...(request ? { requestBody: { required: false, content: json(request) } } : {}),
    responses: {
      '200': { description: 'OK', content: json(response) },
      ...errors([400, 403, ...more, 413, 503, 500].sort((a, b) => a - b), '#/components/schemas/DstackError'),
    },
  },
})

/** The pod listener's API (port 80 in compose: `http://dstack-keymanager/…`; also per-pod unix sockets for the dstack routes). */
export function podOpenApiDocument() {
  return document(
    {
      title: 'keymanager pod API',
      description:
        'Keys for the pods of this CVM. The calling pod is identified by the listener (reverse DNS, a static map, or a per-pod unix socket), never by anything it says. Our own routes answer JSON with 0x-prefixed hex; the dstack routes answer as the dstack guest agent (hex without 0x).',
    },
    {
      '/healthz': { get: { summary: 'Liveness and node state (no pod identity needed)', responses: { '200': { description: 'OK', content: json(healthzSchema) } } } },
      '/sealkey': {
        get: {
          summary: "The calling pod's persistent seal key (same on every node of the network): the current generation's, or an older one's for migration",
          parameters: [
            {
              name: 'generation',
              in: 'query',
              required: false,
              description: 'an older generation (decimal); 410 once purged, 404 when this node never held it',
              schema: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' },
            },
          ],
          responses: { '200': { description: 'OK', content: json(sealkeySchema) }, ...errors([400, 403, 404, 410, 503]) },
        },
      },
      '/generations': {
        get: {
          summary: 'Every master-secret generation of the network as this node last proved it, and which it holds',
          responses: { '200': { description: 'OK', content: json(generationsSchema) }, ...errors([403, 503]) },
        },
      },
      '/attest/{appdata}': {
        get: {
          summary: 'EIP-712 Attestation(hostname, appData) signed by the master key; verifiable on chain with verifyAttestation',
          parameters: [pathParameter('appdata', '32 bytes of hex, 0x optional', '^(0x)?[0-9a-fA-F]{64}$')],
          responses: { '200': { description: 'OK', content: json(attestSchema) }, ...errors([400, 403, 503]) },
        },
      },
      '/GetKey': dstackRoute('dstack GetKey: a key derived for the pod, with its signature chain to the master key', getKeyRequestSchema, getKeySchema),
      '/GetQuote': dstackRoute('dstack GetQuote: a quote of this TEE over the pod report data (protocol-shaped data refused)', getQuoteRequestSchema, getQuoteSchema, [502]),
      '/GetTlsKey': dstackRoute('dstack GetTlsKey: a P-256 TLS key and its certificate chain under the app CA, with RA-TLS extensions', getTlsKeyRequestSchema, getTlsKeySchema, [502]),
      '/Attest': dstackRoute("dstack Attest: dstack's versioned attestation (quote, event log, report data) over the pod report data", attestRequestSchema, attestationSchema, [422, 502]),
      '/EmitEvent': dstackRoute('dstack EmitEvent: extend RTMR3 with a pod event (changes the measurement id of later quotes)', emitEventRequestSchema, emitEventSchema, [409, 422, 502]),
      '/Sign': dstackRoute('dstack Sign: sign with the pod key GetKey("vms", "signing"), with its signature chain to the master key', signRequestSchema, signSchema),
      '/Verify': dstackRoute('dstack Verify: check a signature under a public key', verifyRequestSchema, verifySchema),
      '/Info': dstackRoute('dstack Info: the pod identity and this node', null, infoSchema),
      '/Version': dstackRoute('dstack Version', null, versionSchema),
      '/openapi.json': { get: { summary: 'This document', responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } } },
    },
  )
}

const bearer: Record<string, string[]>[] = [{ bearerAuth: [] }]
const readable: Record<string, string[]>[] = [{ bearerAuth: [] }, { sessionCookie: [] }]

/** The host listener's API: the (untrusted) operator drives bootstrap and onboarding and reads the node's state. */
export function hostOpenApiDocument() {
  return document(
    {
      title: 'keymanager host API',
      description:
        'The operator drives bootstrap and onboarding and reads the node state. Every route needs `Authorization: Bearer <host token>`; the read-only GETs also accept the status page session cookie.',
    },
    {
      '/': {
        get: {
          summary: 'The status page (HTML); the sign-in form when there is no session',
          security: [],
          responses: { '200': { description: 'HTML page', content: { 'text/html': { schema: { type: 'string' } } } } },
        },
      },
      '/login': {
        post: {
          summary: 'Sign in with the host token; sets the HttpOnly, SameSite=Strict session cookie',
          security: [],
          requestBody: {
            required: true,
            content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { token: { type: 'string' } }, required: ['token'] } } },
          },
          responses: {
            '303': { description: 'signed in: redirect to /' },
            '401': { description: 'wrong token: the form again', content: { 'text/html': { schema: { type: 'string' } } } },
            '403': { description: 'cross-origin form post refused', content: { 'text/plain': { schema: { type: 'string' } } } },
          },
        },
      },
      '/logout': {
        post: {
          summary: 'End the session (the form carries the session CSRF token)',
          security: [],
          requestBody: { required: true, content: { 'application/x-www-form-urlencoded': { schema: { type: 'object', properties: { csrf: { type: 'string' } } } } } },
          responses: { '303': { description: 'signed out: redirect to /' }, ...errors([403]) },
        },
      },
      '/bootstrap': {
        post: {
          summary: 'First node: make the master secret and the bootstrap blob; returns the tx for the registry owner, then call again',
          security: bearer,
          responses: { '200': { description: 'OK', content: json(bootstrapSchema) }, ...errors([401, 409, 502]) },
        },
      },
      '/register': {
        post: {
          summary: 'New node: registration key, quote and requestOnboard blob tx',
          security: bearer,
          responses: { '200': { description: 'OK', content: json(registerSchema) }, ...errors([401, 409, 502]) },
        },
      },
      '/register/{enckey}': {
        post: {
          summary: 'Newcomer: fetch the response blob, decrypt, check against the on-chain master key, seal, confirm',
          security: bearer,
          parameters: [pathParameter('enckey', 'the registration key address, or its 64-byte public key', '^(0x)?([0-9a-fA-F]{40}|[0-9a-fA-F]{128})$')],
          responses: { '200': { description: 'OK', content: json(completeSchema) }, ...errors([400, 401, 404, 409, 502]) },
        },
      },
      '/helper/{addr}': Object.fromEntries(
        ['get', 'post'].map((method) => [
          method,
          {
            summary: "Verify request `addr` (decimal id, or the newcomer's address) and send the encrypted master secret",
            security: bearer,
            parameters: [pathParameter('addr', 'decimal request id or 0x address', '^([0-9]{1,78}|0x[0-9a-fA-F]{40})$')],
            responses: {
              '200': { description: 'fulfilled', content: json(helpSchema) },
              ...errors([400, 401, 404, 503]),
              '422': { description: 'refused: error.reason names why (docs/protocol.md#help)', content: json({ $ref: '#/components/schemas/Error' }) },
            },
          } satisfies Operation,
        ]),
      ),
      '/status': {
        get: {
          summary: 'State, master address, generation, registration, each request judged with its decision and reason, and the gas spent per onboarding',
          security: readable,
          responses: { '200': { description: 'OK', content: json(statusSchema) }, ...errors([401]) },
        },
      },
      '/member': {
        post: {
          summary: 'A ready node without a node key (the bootstrap node) becomes a member: registers, answers its own request, confirms',
          security: bearer,
          responses: { '200': { description: 'OK', content: json(z.looseObject({ memberId: z.string().nullable(), step: z.string() })) }, ...errors([401, 409, 503]) },
        },
      },
      '/rotation': {
        get: {
          summary: 'The rotation as this node proves it: generation, held generations, member id and status, open rotation, pending proposal',
          security: readable,
          responses: { '200': { description: 'OK', content: json(rotationStatusSchema) }, ...errors([401, 503]) },
        },
      },
      '/rotation/propose': {
        post: {
          summary: 'A member proposes the next generation (a rotation must be open); ?supersede=true replaces a pending proposal',
          security: bearer,
          responses: { '200': { description: 'OK', content: json(rotationStepSchema) }, ...errors([400, 401, 409, 502, 503]) },
        },
      },
      '/rotation/acknowledge': {
        post: {
          summary: 'A member verifies the pending proposal (quote, policy, blob, its share) and acknowledges it with its node key',
          security: bearer,
          responses: { '200': { description: 'OK', content: json(rotationStepSchema) }, ...errors([401, 409, 502, 503]) },
        },
      },
      '/rotation/commit': {
        post: {
          summary: 'Commits the pending proposal once its acknowledgements reach the quorum',
          security: bearer,
          responses: { '200': { description: 'OK', content: json(rotationStepSchema) }, ...errors([401, 409, 502, 503]) },
        },
      },
      '/escrow': {
        post: {
          summary: 'Escrow every generation this node holds (not revoked or purged) to the active guardian set, on a fresh verified view; one publishEscrow each',
          security: bearer,
          responses: { '200': { description: 'OK', content: json(escrowSchema) }, ...errors([401, 409, 502, 503]) },
        },
      },
      '/recover/{enckey}': {
        post: {
          summary: 'The open recovery\'s enclave: reassemble every escrowed generation from the released shares, check each against its proven key, seal, confirm; state pending until k valid shares of each',
          security: bearer,
          parameters: [pathParameter('enckey', 'the registration key address, or its 64-byte public key', '^(0x)?([0-9a-fA-F]{40}|[0-9a-fA-F]{128})$')],
          responses: { '200': { description: 'recovered, or pending', content: json(recoverSchema) }, ...errors([400, 401, 404, 409, 502]) },
        },
      },
      '/blobs/{versionedHash}': {
        get: {
          summary: 'A raw blob of this node archive, for peers once beacon nodes pruned it (public chain data: callers check it against its hash)',
          security: [],
          parameters: [pathParameter('versionedHash', 'EIP-4844 versioned hash', '^0x01[0-9a-fA-F]{62}$')],
          responses: {
            '200': { description: '131072 bytes', content: { 'application/octet-stream': { schema: { type: 'string', contentMediaType: 'application/octet-stream' } } } },
            ...errors([400, 404, 429]),
          },
        },
      },
      '/collateral/{quoteBlobHash}': {
        get: {
          summary:
            'The DCAP collateral this node judged a quote with, kept with the decision it acted on, for audit --peer (public Intel data: callers check its hash, signatures and chain to the Intel root)',
          security: [],
          parameters: [pathParameter('quoteBlobHash', 'versioned hash of the quote blob (the request\'s quoteBlobHash)', '^0x01[0-9a-fA-F]{62}$')],
          responses: {
            '200': {
              description: 'the kept record (at most 256 KiB of collateral)',
              content: json(
                z.object({
                  quoteBlobHash: z.string(),
                  collateralHash: z.string().describe('keccak256 of the collateral object as served (fields in a fixed order)'),
                  judgedAt: z.number().int().describe('unix seconds: the verified block time the quote was judged at'),
                  collateral: z.record(z.string(), z.string()).describe('dcap-qvl collateral shape'),
                }),
              ),
            },
            ...errors([400, 404, 429]),
          },
        },
      },
      '/metrics': {
        get: {
          summary: 'Prometheus metrics (text exposition format 0.0.4)',
          security: readable,
          responses: { '200': { description: 'OK', content: { 'text/plain': { schema: { type: 'string' } } } }, ...errors([401]) },
        },
      },
      '/openapi.json': {
        get: {
          summary: 'This document',
          security: readable,
          responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } }, ...errors([401]) },
        },
      },
    },
    {
      security: bearer,
      components: {
        securitySchemes: {
          bearerAuth: { type: 'http', scheme: 'bearer', description: 'the host token (contents of host.tokenFile)' },
          sessionCookie: { type: 'apiKey', in: 'cookie', name: 'keymanager_session', description: 'status page session (POST /login)' },
        },
      },
    },
  )
}
