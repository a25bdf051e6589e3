// A devnet DCAP PKI in Intel's shape (docs/protocol.md#tee-providers `simulated`), made in TypeScript with node:crypto and the
// project's DER writer (src/keys/der.ts; no openssl at run time): a root CA, a PCK Platform CA, a TCB signing certificate, the root CA and PCK CRLs,
// PCK leaf certificates carrying the Intel SGX extension (FMSPC, CPUSVN, PCESVN…), and signed TCB info / QE identity.
// Quotes made under it (simulated.ts) pass the production verifier (`createDcapVerifier`) once, and only once, a node
// is told to trust this devnet's root. Nothing here is trusted by default. One PKI per devnet, kept in its data dir.
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
  type KeyObject,
} from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Hex } from 'viem'
import type { Collateral } from '../tee/collateral.ts'
import { bitString, bool, enumerated, explicit, int, octets, oid, pem as pemOf, seq, set, time, tlv, utf8 } from '../keys/der.ts'
import type { TcbStatus } from '../tee/types.ts'

const ECDSA_WITH_SHA256 = seq(oid('1.2.840.10045.4.3.2'))
const extension = (id: string, critical: boolean, value: Uint8Array) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value))
const distinguishedName = (commonName: string, organization: string) =>
  seq(set(seq(oid('2.5.4.3'), utf8(commonName))), set(seq(oid('2.5.4.10'), utf8(organization))))

// ---- the PKI ------------------------------------------------------------------------------------------------------

/** FMSPC of devnet platforms unless a node asks for another (0x + 12 hex digits). */
export const DEVNET_FMSPC: Hex = '0xde7e00000001'
const SGX_EXTENSION = '1.2.840.113741.1.13.1'
const DAY = 86_400

/**
 * The platform TCB levels of the devnet TCB info, best first: a platform's TCB status is chosen by the CPUSVN its PCK
 * certificate carries (every component equal to the level's number), exactly as Intel rates a real platform.
 */
export const DEVNET_TCB_LEVELS: readonly (readonly [TcbStatus, number])[] = [
  ['UpToDate', 7],
  ['SWHardeningNeeded', 6],
  ['ConfigurationNeeded', 5],
  ['ConfigurationAndSWHardeningNeeded', 4],
  ['OutOfDate', 3],
  ['OutOfDateConfigurationNeeded', 2],
  ['Revoked', 1],
]
const DEVNET_PCESVN = 13

/** What simulated quotes put in their TD report and QE report, and the devnet collateral accepts (simulated.ts). */
export const DEVNET_TD = {
  /** TEE_TCB_SVN: TDX module SVN 3, major version 1 (so the TCB info's `TDX_01` module identity rates it). */
  teeTcbSvn: Uint8Array.from([3, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
  mrSignerSeam: new Uint8Array(48),
  seamAttributes: new Uint8Array(8),
} as const
export const DEVNET_QE = {
  mrSigner: createHash('sha256').update('keymanager devnet TD quoting enclave signer').digest(),
  mrEnclave: createHash('sha256').update('keymanager devnet TD quoting enclave').digest(),
  isvProdId: 2,
  isvSvn: 4,
  /** INIT | MODE64BIT | PROVISIONKEY-free, never DEBUG (bit 1). */
  attributes: Uint8Array.from([0x11, ...new Array<number>(15).fill(0)]),
} as const

type Authority = { name: Buffer; key: KeyObject; keyId: Buffer; der: Buffer }

export type DevnetPlatform = {
  /** PEM: the PCK certificate, the PCK Platform CA, the root (a TDX quote's certification data type 5). */
  pckChainPem: string
  /** The PCK private key (PKCS#8 PEM): signs the QE report of every quote of this platform. */
  pckKeyPem: string
  fmspc: Hex
  tcbStatus: TcbStatus
  /** The PCK certificate's serial number, lowercase hex. */
  serial: string
}

export type DevnetCollateralOptions = {
  fmspc?: Hex
  /** Unix seconds; default a minute ago. An old date makes collateral a policy's max collateral age refuses. */
  issuedAt?: number
  /** Seconds from issue to nextUpdate (TCB info, QE identity and both CRLs); default 30 days, as Intel's. */
  validFor?: number
  /** PCK certificate serials (hex) the PCK CRL revokes. */
  revokedPckSerials?: readonly string[]
  /** TCB info and QE identity `tcbEvaluationDataNumber`; default 1. Intel raises it at each TCB recovery. */
  tcbEvaluationDataNumber?: number
}

export type DevnetPki = {
  /** The devnet root CA certificate (DER): what a devnet node lists in `quote.trustedRootCaFiles`. */
  readonly rootCaDer: Uint8Array
  readonly rootCaPem: string
  /** A new platform: a fresh PCK key and certificate with this FMSPC, rated `tcbStatus` by the devnet TCB info. */
  mintPlatform(options?: { fmspc?: Hex; tcbStatus?: TcbStatus; now?: number }): DevnetPlatform
  /** TDX collateral for one FMSPC in dcap-qvl's `getCollateral` shape, freshly signed. */
  collateral(options?: DevnetCollateralOptions): Collateral
  /** Writes the certificates (PEM) and keys (PKCS#8 PEM, mode 0600) to `dir`. */
  save(dir: string): void
}

const FILES = {
  root: ['root.pem', 'root.key'],
  pckCa: ['pck-ca.pem', 'pck-ca.key'],
  tcbSigning: ['tcb-signing.pem', 'tcb-signing.key'],
} as const

const pem = (der: Uint8Array) => pemOf('CERTIFICATE', der)
const clock = () => Math.floor(Date.now() / 1000)

/** Random positive 16-byte serial: DCAP verifiers look serials up across issuers, so they must not repeat. */
function randomSerial(): Buffer {
  const serial = randomBytes(16)
  serial[0] = (serial[0]! & 0x7f) | 0x40
  return serial
}

function publicKeyInfo(key: KeyObject): { spki: Buffer; keyId: Buffer } {
  const spki = createPublicKey(key).export({ type: 'spki', format: 'der' })
  // RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits (the 65-byte uncompressed P-256 point).
  return { spki, keyId: createHash('sha1').update(spki.subarray(spki.length - 65)).digest() }
}

type CertificateRequest = {
  issuer: Authority | 'self'
  subject: Buffer
  key: KeyObject
  notBefore: number
  notAfter: number
  extensions: Buffer[]
}

function issue(request: CertificateRequest): { der: Buffer; serial: Buffer; keyId: Buffer } {
  const { spki, keyId } = publicKeyInfo(request.key)
  const issuer = request.issuer === 'self' ? { name: request.subject, key: request.key, keyId } : request.issuer
  const serial = randomSerial()
  const tbs = seq(
    explicit(0, int(2)),
    int(serial),
    ECDSA_WITH_SHA256,
    issuer.name,
    seq(time(request.notBefore), time(request.notAfter)),
    request.subject,
    spki,
    explicit(
      3,
      seq(
        extension('2.5.29.35', false, seq(tlv(0x80, issuer.keyId))),
        extension('2.5.29.14', false, octets(keyId)),
        ...request.extensions,
      ),
    ),
  )
  const signature = sign('sha256', tbs, { key: issuer.key, dsaEncoding: 'der' })
  return { der: seq(tbs, ECDSA_WITH_SHA256, bitString(signature)), serial, keyId }
}

// keyUsage bits (RFC 5280 §4.2.1.3), DER named-bit lists: keyCertSign(5) + cRLSign(6); digitalSignature(0) + nonRepudiation(1).
const CA_KEY_USAGE = extension('2.5.29.15', true, bitString(Uint8Array.of(0x06), 1))
const SIGNING_KEY_USAGE = extension('2.5.29.15', true, bitString(Uint8Array.of(0xc0), 6))
const caConstraints = (pathLength: number) => extension('2.5.29.19', true, seq(bool(true), int(pathLength)))
const END_ENTITY = extension('2.5.29.19', true, seq())

function crl(issuer: Authority, thisUpdate: number, nextUpdate: number, revokedSerials: readonly string[]): Buffer {
  const revoked = revokedSerials.map((serial) => seq(int(Buffer.from(serial, 'hex')), time(thisUpdate)))
  const tbs = seq(
    int(1),
    ECDSA_WITH_SHA256,
    issuer.name,
    time(thisUpdate),
    time(nextUpdate),
    ...(revoked.length ? [seq(...revoked)] : []),
    explicit(0, seq(extension('2.5.29.20', false, int(thisUpdate)), extension('2.5.29.35', false, seq(tlv(0x80, issuer.keyId))))),
  )
  return seq(tbs, ECDSA_WITH_SHA256, bitString(sign('sha256', tbs, { key: issuer.key, dsaEncoding: 'der' })))
}

/** The Intel SGX extension of a PCK certificate (Intel's PCK Certificate and CRL Profile), as Intel lays it out. */
function sgxExtension(fmspc: Uint8Array, cpuSvn: Uint8Array): Buffer {
  const item = (suffix: string, value: Buffer) => seq(oid(`${SGX_EXTENSION}.${suffix}`), value)
  const tcb = seq(
    ...Array.from(cpuSvn, (svn, i) => item(`2.${i + 1}`, int(svn))),
    item('2.17', int(DEVNET_PCESVN)),
    item('2.18', octets(cpuSvn)),
  )
  return seq(
    item('1', octets(randomBytes(16))), // PPID
    item('2', tcb),
    item('3', octets(Uint8Array.of(0, 0))), // PCE-ID
    item('4', octets(fmspc)),
    item('5', enumerated(1)), // SGX type: Scalable (Platform CA platforms)
    item('6', octets(randomBytes(16))), // platform instance id
    item('7', seq(item('7.1', bool(false)), item('7.2', bool(true)), item('7.3', bool(true)))), // dynamic platform, cached keys, SMT
  )
}

function fmspcBytes(fmspc: Hex): Buffer {
  if (typeof fmspc !== 'string' || !/^0x[0-9a-fA-F]{12}$/.test(fmspc)) throw new TypeError(`fmspc must be 0x and 12 hex digits, got ${String(fmspc)}`)
  return Buffer.from(fmspc.slice(2), 'hex')
}

const isoDate = (unix: number) => new Date(Math.floor(unix) * 1000).toISOString().replace('.000Z', 'Z')
const p1363 = (data: string, key: KeyObject) => sign('sha256', Buffer.from(data, 'utf8'), { key, dsaEncoding: 'ieee-p1363' }).toString('hex')

function newKey(): KeyObject {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
}

function authority(der: Buffer, key: KeyObject): Authority {
  const cert = new X509Certificate(der)
  if (!cert.checkPrivateKey(key)) throw new Error(`devnet PKI: the key does not match "${cert.subject.replace(/\n/g, ', ')}"`)
  return { name: subjectOf(der), key, keyId: publicKeyInfo(key).keyId, der }
}

/** The subject Name's DER bytes, read back from a certificate this module wrote (fixed field order). */
function subjectOf(der: Buffer): Buffer {
  const x509 = new X509Certificate(der)
  const cn = /(?:^|\n)CN=([^\n]*)/.exec(x509.subject)?.[1] ?? ''
  const o = /(?:^|\n)O=([^\n]*)/.exec(x509.subject)?.[1] ?? ''
  const name = distinguishedName(cn, o)
  if (!der.includes(name)) throw new Error(`devnet PKI: "${cn}" was not written by this module`)
  return name
}

function devnetPki(root: Authority, pckCa: Authority, tcbSigning: Authority, clockNow: () => number): DevnetPki {
  const chain = (...certs: Authority[]) => certs.map((c) => pem(c.der)).join('')
  return Object.freeze({
    rootCaDer: new Uint8Array(root.der),
    rootCaPem: pem(root.der),

    mintPlatform({ fmspc = DEVNET_FMSPC, tcbStatus = 'UpToDate', now = clockNow() }: { fmspc?: Hex; tcbStatus?: TcbStatus; now?: number } = {}) {
      const level = DEVNET_TCB_LEVELS.find(([status]) => status === tcbStatus)
      if (!level) throw new TypeError(`tcbStatus must be one of ${DEVNET_TCB_LEVELS.map(([s]) => s).join(', ')}, got ${String(tcbStatus)}`)
      const key = newKey()
      const leaf = issue({
        issuer: pckCa,
        subject: distinguishedName('Devnet SGX PCK Certificate', 'keymanager devnet'),
        key,
        notBefore: now - DAY,
        notAfter: now + 7 * 365 * DAY,
        extensions: [SIGNING_KEY_USAGE, END_ENTITY, extension(SGX_EXTENSION, false, sgxExtension(fmspcBytes(fmspc), new Uint8Array(16).fill(level[1])))],
      })
      return {
        pckChainPem: pem(leaf.der) + chain(pckCa, root),
        pckKeyPem: key.export({ type: 'pkcs8', format: 'pem' }).toString(),
        fmspc: fmspc.toLowerCase() as Hex,
        tcbStatus,
        serial: leaf.serial.toString('hex'),
      }
    },

    collateral({
      fmspc = DEVNET_FMSPC,
      issuedAt = clockNow() - 60,
      validFor = 30 * DAY,
      revokedPckSerials = [],
      tcbEvaluationDataNumber = 1,
    }: DevnetCollateralOptions = {}) {
      const fmspcHex = fmspcBytes(fmspc).toString('hex').toUpperCase()
      const dates = { issueDate: isoDate(issuedAt), nextUpdate: isoDate(issuedAt + validFor) }
      const tcbDate = isoDate(issuedAt - DAY)
      const svns = (values: ArrayLike<number>) => Array.from({ length: 16 }, (_, i) => ({ svn: values[i] ?? 0 }))
      const module = { mrsigner: Buffer.from(DEVNET_TD.mrSignerSeam).toString('hex').toUpperCase(), attributes: '0000000000000000', attributesMask: 'FFFFFFFFFFFFFFFF' }
      const tcbInfo = JSON.stringify({
        id: 'TDX',
        version: 3,
        ...dates,
        fmspc: fmspcHex,
        pceId: '0000',
        tcbType: 0,
        tcbEvaluationDataNumber,
        tdxModule: module,
        tdxModuleIdentities: [{ id: 'TDX_01', ...module, tcbLevels: [{ tcb: { isvsvn: DEVNET_TD.teeTcbSvn[0] }, tcbDate, tcbStatus: 'UpToDate' }] }],
        tcbLevels: DEVNET_TCB_LEVELS.map(([status, svn], i) => ({
          tcb: { sgxtcbcomponents: svns(new Array(16).fill(svn)), pcesvn: DEVNET_PCESVN, tdxtcbcomponents: svns(DEVNET_TD.teeTcbSvn) },
          tcbDate,
          tcbStatus: status,
          ...(status === 'UpToDate' ? {} : { advisoryIDs: [`DEVNET-SA-${String(i).padStart(5, '0')}`] }),
        })),
      })
      const qeIdentity = JSON.stringify({
        id: 'TD_QE',
        version: 2,
        ...dates,
        tcbEvaluationDataNumber,
        miscselect: '00000000',
        miscselectMask: 'FFFFFFFF',
        attributes: Buffer.from(DEVNET_QE.attributes).toString('hex').toUpperCase(),
        attributesMask: `FBFFFFFFFFFFFFFF${'00'.repeat(8)}`,
        mrsigner: DEVNET_QE.mrSigner.toString('hex').toUpperCase(),
        isvprodid: DEVNET_QE.isvProdId,
        tcbLevels: [{ tcb: { isvsvn: DEVNET_QE.isvSvn }, tcbDate, tcbStatus: 'UpToDate' }],
      })
      const nextUpdate = issuedAt + validFor
      const signingChain = chain(tcbSigning, root)
      return {
        pck_crl_issuer_chain: chain(pckCa, root),
        root_ca_crl: crl(root, issuedAt, nextUpdate, []).toString('hex'),
        pck_crl: crl(pckCa, issuedAt, nextUpdate, revokedPckSerials).toString('hex'),
        tcb_info_issuer_chain: signingChain,
        tcb_info: tcbInfo,
        tcb_info_signature: p1363(tcbInfo, tcbSigning.key),
        qe_identity_issuer_chain: signingChain,
        qe_identity: qeIdentity,
        qe_identity_signature: p1363(qeIdentity, tcbSigning.key),
      }
    },

    save(dir: string) {
      mkdirSync(dir, { recursive: true, mode: 0o700 })
      for (const [which, [certFile, keyFile]] of Object.entries(FILES)) {
        const a = { root, pckCa, tcbSigning }[which as keyof typeof FILES]
        writeFileSync(join(dir, certFile), pem(a.der))
        writeFileSync(join(dir, keyFile), a.key.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 })
      }
    },
  })
}

/**
 * A new devnet PKI: fresh P-256 keys, certificates valid from a month before `now` (so collateral minted with an old
 * issue date still lies under valid signers) for ten years.
 */
export function createDevnetPki({ now = clock() }: { now?: number } = {}): DevnetPki {
  const notBefore = now - 31 * DAY
  const notAfter = now + 10 * 365 * DAY
  const rootKey = newKey()
  const rootName = distinguishedName('Devnet SGX Root CA', 'keymanager devnet')
  const rootCert = issue({ issuer: 'self', subject: rootName, key: rootKey, notBefore, notAfter, extensions: [CA_KEY_USAGE, caConstraints(1)] })
  const root: Authority = { name: rootName, key: rootKey, keyId: rootCert.keyId, der: rootCert.der }
  const under = (commonName: string, extensions: Buffer[]): Authority => {
    const key = newKey()
    const name = distinguishedName(commonName, 'keymanager devnet')
    const cert = issue({ issuer: root, subject: name, key, notBefore, notAfter, extensions })
    return { name, key, keyId: cert.keyId, der: cert.der }
  }
  // "Platform" in the PCK CA's name selects the platform PCK CRL (dcap.ts, collateral.ts), as Intel's naming does.
  const pckCa = under('Devnet SGX PCK Platform CA', [CA_KEY_USAGE, caConstraints(0)])
  const tcbSigning = under('Devnet SGX TCB Signing', [SIGNING_KEY_USAGE, END_ENTITY])
  return devnetPki(root, pckCa, tcbSigning, () => clock())
}

/** Reads a PKI `save` wrote; throws naming the file when one is missing or does not match its key. */
export function loadDevnetPki(dir: string): DevnetPki {
  const load = ([certFile, keyFile]: readonly [string, string]): Authority => {
    let der: Buffer
    let key: KeyObject
    try {
      der = Buffer.from(new X509Certificate(readFileSync(join(dir, certFile))).raw)
      key = createPrivateKey(readFileSync(join(dir, keyFile)))
    } catch (error) {
      throw new Error(`devnet PKI ${dir}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message} (${certFile}, ${keyFile})`)
    }
    return authority(der, key)
  }
  return devnetPki(load(FILES.root), load(FILES.pckCa), load(FILES.tcbSigning), () => clock())
}

/** Writes a platform's PCK chain and key for a node's config (`quote.pckChainFile`, `quote.pckKeyFile`). */
export function saveDevnetPlatform(platform: DevnetPlatform, dir: string): { pckChainFile: string; pckKeyFile: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const pckChainFile = join(dir, 'pck-chain.pem')
  const pckKeyFile = join(dir, 'pck.key')
  writeFileSync(pckChainFile, platform.pckChainPem)
  writeFileSync(pckKeyFile, platform.pckKeyPem, { mode: 0o600 })
  return { pckChainFile, pckKeyFile }
}
