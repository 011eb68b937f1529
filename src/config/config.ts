import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import { validCidr } from '../iscsi/acl';
import type { Compression } from '../storage/codec/compression';
import { DEFAULT_UPLOADS_WHILE_READING } from '../storage/io-pool';
import { validLunName } from '../storage/layout';
import type { PriceTable } from '../storage/lun-costs';
import type { ServerSideEncryption } from '../storage/s3-sse';
import { type ClusterConfig, parseCluster } from './cluster';
import { type EncryptionConfig, parseCompression, parseEncryption, parsePrices, parseServerSideEncryption } from './data-at-rest';
import { ConfigError } from './errors';
import { Locator, Reader } from './reader';

export interface PortalConfig {
  readonly host: string;
  readonly port: number;
}

export interface S3Config {
  readonly endpoint: string | undefined;
  readonly region: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly pathStyle: boolean;
  readonly concurrency: number;
  /** Uploads in flight at most while reads wait on S3 (reads first; README, bench/qos.ts). */
  readonly uploadsWhileReading: number;
  readonly requestTimeoutMs: number;
  readonly retryDeadlineMs: number;
  readonly contentMd5: boolean;
  /** What the bucket's provider charges: the LUNs' estimated monthly cost (metrics, `lun info`). */
  readonly prices: PriceTable;
  /** Server-side encryption of every object (docs/data-at-rest.md). */
  readonly serverSideEncryption?: ServerSideEncryption;
}

export interface LunConfig {
  readonly lun: number;
  readonly name: string;
  readonly store: 'file' | 's3';
  readonly sizeBytes: number;
  readonly blockSize: 512 | 4096;
  readonly cacheBytes: number;
  /** WCE (SBC-4 §6.5.5): `cache.mode: journal` is write-through with the journal. */
  readonly cacheMode: 'write-back' | 'write-through';
  /** Writes are durable in the server's journal before S3 (`cache.mode: journal`, or `cache.journal: true`). */
  readonly journal: boolean;
  readonly flushDelayMs: number;
  readonly readOnly: boolean;
  /**
   * `snapshot: LUN@SNAPSHOT`: this entry exports, read-only, LUN's snapshot (its size is the
   * snapshot's; `size` is not given). Its `name` is the entry's own.
   */
  readonly snapshotOf?: { readonly lun: string; readonly snapshot: string };
  /** In a cluster: the node that takes the LUN when both are up (spreads LUNs over nodes). */
  readonly preferred?: string;
  /** How chunks are compressed before they are stored (docs/data-at-rest.md); absent: off. */
  readonly compression?: Compression;
  /** Client-side encryption of every chunk; absent: chunks are stored in clear. */
  readonly encryption?: EncryptionConfig;
}

/** The server's local journal (docs/journal.md). */
export interface JournalConfig {
  readonly dir: string;
  readonly sizeBytes: number;
  /** How long a write waits for room in a full journal before failing retryably. */
  readonly spaceTimeoutMs: number;
  /** The longest a journaled write waits before its chunk is uploaded. */
  readonly uploadDelayMs: number;
}

export interface ChapConfig {
  readonly username: string;
  readonly secret: string;
  /** Mutual CHAP: what the target answers with when the initiator challenges it. */
  readonly mutual: { readonly username: string; readonly secret: string } | undefined;
}

export interface AclConfig {
  readonly initiators: readonly string[];
  readonly networks: readonly string[];
}

export interface TargetConfig {
  readonly iqn: string;
  readonly alias: string | undefined;
  readonly portalGroupTag: number;
  /** CHAP required to log in (the target's own, else `auth.chap`); undefined = AuthMethod None. */
  readonly chap: ChapConfig | undefined;
  readonly acl: AclConfig;
  readonly luns: readonly LunConfig[];
}

export interface IscsiTuning {
  readonly queueDepth: number;
  readonly maxRecvDataSegmentLength: number;
  readonly maxBurstLength: number;
  readonly firstBurstLength: number;
  readonly maxOutstandingR2T: number;
  readonly nopIntervalMs: number;
  readonly nopTimeoutMs: number;
  readonly loginTimeoutMs: number;
  /** RFC 7143 §13.1: digests we accept, in our order of preference. */
  readonly headerDigests: readonly string[];
  readonly dataDigests: readonly string[];
}

/**
 * `allowed` (default): whichever the initiator lists first (RFC 7143 §6.2: the responder takes
 * the first offered value it may use); `required`: CRC32C or no login; `off`: never CRC32C.
 */
const DIGEST_MODES: Record<string, readonly string[]> = {
  allowed: ['CRC32C', 'None'],
  required: ['CRC32C'],
  off: ['None'],
};

export interface Config {
  readonly file: string;
  readonly portals: readonly PortalConfig[];
  /** Root of the local chunk store, resolved against the config file's directory. */
  readonly dataDir: string;
  /** The S3 connection, required when a LUN uses `store: s3`. */
  readonly s3: S3Config | undefined;
  readonly log: { readonly level: 'error' | 'warn' | 'info' | 'debug'; readonly format: 'text' | 'json' };
  readonly iscsi: IscsiTuning;
  /** The HTTP endpoint for Prometheus metrics, health and admin requests; undefined = off. */
  readonly metrics: { readonly listen: PortalConfig | undefined };
  /** CHAP required on discovery sessions; undefined = AuthMethod None. */
  readonly discovery: { readonly chap: ChapConfig | undefined };
  /** Single-writer lease of every LUN (see src/storage/lease.ts). */
  readonly lease: { readonly ttlMs: number; readonly renewEveryMs: number; readonly marginMs: number };
  readonly journal: JournalConfig | undefined;
  /** HA (docs/ha.md): the nodes that present these targets together. */
  readonly cluster: ClusterConfig | undefined;
  readonly targets: readonly TargetConfig[];
}

/** RFC 3720 §3.2.6.3 / RFC 7143 §4.2.7.3: iqn., eui. or naa. names, lower case. */
const IQN_RE = /^(iqn\.\d{4}-\d{2}\.[a-z0-9][a-z0-9.-]*(:[a-z0-9.:_-]+)?|eui\.[0-9a-f]{16}|naa\.[0-9a-f]{16}([0-9a-f]{16})?)$/;

export function loadConfig(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(file, undefined, undefined, '', `cannot read: ${(e as Error).message}`);
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file: string): Config {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const e = doc.errors[0];
    const pos = e.linePos?.[0];
    throw new ConfigError(file, pos?.line, pos?.col, '', `YAML syntax: ${e.message.split('\n')[0]}`);
  }
  const root = new Reader(new Locator(file, doc, lines), [], doc.toJS() ?? {});
  root.object(['portals', 'dataDir', 's3', 'lease', 'journal', 'metrics', 'log', 'iscsi', 'auth', 'discovery', 'cluster', 'targets']);
  const baseDir = path.dirname(path.resolve(file));
  const portals = root.get('portals').array().map(parsePortal);
  const auth = root.get('auth');
  if (auth.present) auth.object(['chap']);
  const defaultChap = auth.present ? parseChap(auth.get('chap')) : undefined;
  const targets = root
    .get('targets')
    .required()
    .array()
    .map((t) => parseTarget(t, defaultChap, baseDir));
  const disc = root.get('discovery');
  if (disc.present) disc.object(['chap']);
  if (targets.length === 0) root.get('targets').fail('at least one target is required');
  checkUnique(root, targets);
  const s3 = parseS3(root.get('s3'), baseDir);
  const journal = parseJournal(root.get('journal'), baseDir);
  const cluster = parseCluster(root.get('cluster'), parsePortal);
  if (cluster) checkCluster(root, cluster, targets);
  // A node's portals form one portal group, whose tag is the node's target port group.
  const served = cluster ? targets.map((t) => ({ ...t, portalGroupTag: cluster.self.tpg })) : targets;
  targets.forEach((t, ti) => {
    t.luns.forEach((l, li) => {
      const lunR = root.get('targets').at(ti).get('luns').at(li);
      if (l.store === 's3' && !s3) lunR.get('store').fail('store "s3" needs an "s3:" section (endpoint, bucket, ...)');
      if (l.journal && !journal) {
        const cache = lunR.get('cache');
        (cache.get('journal').present ? cache.get('journal') : cache.get('mode')).fail(
          'this LUN uses the journal: the server needs a "journal:" section (dir, size)',
        );
      }
    });
  });
  return {
    file,
    // A cluster node listens where the cluster says it does.
    portals: cluster ? cluster.self.portals : portals.length > 0 ? portals : [{ host: '127.0.0.1', port: 3260 }],
    dataDir: path.resolve(baseDir, root.get('dataDir').string('./data')),
    s3,
    log: parseLog(root.get('log')),
    iscsi: parseIscsi(root.get('iscsi')),
    lease: parseLease(root.get('lease')),
    journal,
    discovery: { chap: disc.present ? parseChap(disc.get('chap')) : undefined },
    metrics: cluster ? { listen: cluster.self.admin } : parseMetrics(root.get('metrics')),
    cluster,
    targets: served,
  };
}

/**
 * A cluster node's portals and admin endpoint are its node entry's (one place to change), and
 * every LUN's preferred node is one of the nodes. Journal LUNs replicate their records to the
 * other nodes (docs/ha.md), which needs their addresses and the secret.
 */
function checkCluster(root: Reader, cluster: ClusterConfig, targets: readonly TargetConfig[]): void {
  if (root.get('portals').present)
    root.get('portals').fail('in a cluster the portals are the node\'s (cluster.nodes[].portals): drop "portals"', 'key');
  if (root.get('metrics').present)
    root.get('metrics').fail('in a cluster the metrics endpoint is the node\'s "admin" address: drop "metrics"', 'key');
  targets.forEach((t, ti) => {
    const tpgt = root.get('targets').at(ti).get('portalGroupTag');
    if (tpgt.present) tpgt.fail('in a cluster the portal group tag is the node\'s tpg: drop "portalGroupTag"', 'key');
    t.luns.forEach((l, li) => {
      const lunR = root.get('targets').at(ti).get('luns').at(li);
      if (l.snapshotOf && l.preferred !== undefined)
        lunR.get('preferred').fail('a snapshot LUN is read-only and served by every node: drop "preferred"');
      if (l.preferred !== undefined && !cluster.nodes.some((n) => n.name === l.preferred)) {
        lunR.get('preferred').fail(`"${l.preferred}" is not a node of the cluster (${cluster.nodes.map((n) => n.name).join(', ')})`);
      }
      // A node's journal holds writes S3 does not have yet: it is replicated to every other
      // node, which replays it at a takeover (docs/ha.md, "Journal replication").
      if (l.journal && (!cluster.secret || cluster.nodes.some((n) => !n.replication))) {
        lunR
          .get('cache')
          .fail('a journal LUN in a cluster replicates its records to the other nodes: every node needs "replication" and the cluster a "secret"');
      }
    });
  });
}

function parsePortal(r: Reader): PortalConfig {
  const s = r.string();
  const m = /^(\[[0-9a-fA-F:]+\]|[^:\s]+):([0-9]{1,5})$/.exec(s);
  if (!m) r.fail(`expected host:port, got "${s}"`);
  const port = Number(m[2]);
  if (port < 1 || port > 65535) r.fail(`port ${port} out of range`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

function parseS3(r: Reader, baseDir: string): S3Config | undefined {
  if (!r.present) return undefined;
  r.object([
    'endpoint',
    'region',
    'bucket',
    'prefix',
    'pathStyle',
    'concurrency',
    'uploadsWhileReading',
    'requestTimeout',
    'retryDeadline',
    'contentMd5',
    'prices',
    'serverSideEncryption',
  ]);
  const endpointR = r.get('endpoint');
  const endpoint = endpointR.optionalString();
  if (endpoint !== undefined && !/^https?:\/\/[^\s/]+(:\d+)?\/?$/.test(endpoint)) endpointR.fail(`expected http(s)://host[:port], got "${endpoint}"`);
  const bucketR = r.get('bucket').required();
  const bucket = bucketR.string();
  // S3 bucket naming rules: 3-63 characters, lower case, digits, dots and hyphens.
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(bucket)) bucketR.fail(`"${bucket}" is not a valid bucket name`);
  const prefixR = r.get('prefix');
  const prefix = prefixR.present ? prefixR.string() : '';
  if (/(^\/)|(\/\/)|\.\./.test(prefix)) prefixR.fail('the prefix must not start with "/", contain "//" or ".."');
  const concurrency = r.get('concurrency').int(64, 3, 1024);
  const uploadsR = r.get('uploadsWhileReading');
  const uploadsWhileReading = uploadsR.int(DEFAULT_UPLOADS_WHILE_READING, 1, 1024);
  if (uploadsWhileReading > concurrency) uploadsR.fail(`${uploadsWhileReading} is more than s3.concurrency (${concurrency})`);
  const sse = parseServerSideEncryption(r.get('serverSideEncryption'), baseDir);
  return {
    endpoint,
    region: r.get('region').string('us-east-1'),
    bucket,
    prefix: prefix.replace(/\/+$/, ''),
    pathStyle: r.get('pathStyle').bool(endpoint !== undefined),
    concurrency,
    uploadsWhileReading,
    requestTimeoutMs: r.get('requestTimeout').duration(10_000),
    retryDeadlineMs: r.get('retryDeadline').duration(15_000),
    contentMd5: r.get('contentMd5').bool(false),
    prices: parsePrices(r.get('prices')),
    ...(sse ? { serverSideEncryption: sse } : {}),
  };
}

function parseJournal(r: Reader, baseDir: string): JournalConfig | undefined {
  if (!r.present) return undefined;
  r.object(['dir', 'size', 'spaceTimeout', 'uploadDelay']);
  const sizeR = r.get('size');
  const sizeBytes = sizeR.size(1024 * 1024 * 1024);
  // Segments are at least 1 MiB and at most an eighth of the journal (docs/journal.md).
  if (sizeBytes < 8 * 1024 * 1024) sizeR.fail('journal size must be at least 8MiB');
  return {
    dir: path.resolve(baseDir, r.get('dir').required().string()),
    sizeBytes,
    spaceTimeoutMs: r.get('spaceTimeout').duration(15_000),
    uploadDelayMs: r.get('uploadDelay').duration(30_000),
  };
}

function parseMetrics(r: Reader): Config['metrics'] {
  if (!r.present) return { listen: { host: '127.0.0.1', port: 9470 } };
  r.object(['listen']);
  const l = r.get('listen');
  if (l.value === false) return { listen: undefined };
  return { listen: l.present ? parsePortal(l) : { host: '127.0.0.1', port: 9470 } };
}

function parseLease(r: Reader): Config['lease'] {
  if (r.present) r.object(['ttl', 'renewInterval', 'margin']);
  const ttlR = r.present ? r.get('ttl') : undefined;
  const ttlMs = ttlR ? ttlR.duration(20_000) : 20_000;
  const renewR = r.present ? r.get('renewInterval') : undefined;
  const renewEveryMs = renewR ? renewR.duration(3_000) : 3_000;
  // A holder suspends its writes after ttl/2 without a renewal: it must get several tries.
  if (renewEveryMs * 3 > ttlMs / 2) (renewR ?? ttlR ?? r).fail('lease.renewInterval must be at most a sixth of lease.ttl');
  if (ttlMs < 2_000) ttlR?.fail('lease.ttl must be at least 2s');
  const marginR = r.present ? r.get('margin') : undefined;
  const marginMs = marginR?.present ? marginR.duration(1_000) : Math.max(1_000, Math.round(ttlMs / 4));
  if (marginMs < 500) marginR?.fail('lease.margin must be at least 500ms');
  return { ttlMs, renewEveryMs, marginMs };
}

function parseLog(r: Reader): Config['log'] {
  if (!r.present) return { level: 'info', format: 'text' };
  r.object(['level', 'format']);
  return { level: r.get('level').oneOf(['error', 'warn', 'info', 'debug'], 'info'), format: r.get('format').oneOf(['text', 'json'], 'text') };
}

function parseIscsi(r: Reader): IscsiTuning {
  const keys = [
    'queueDepth',
    'maxRecvDataSegmentLength',
    'maxBurstLength',
    'firstBurstLength',
    'maxOutstandingR2T',
    'nopInterval',
    'nopTimeout',
    'loginTimeout',
    'headerDigest',
    'dataDigest',
  ];
  if (r.present) r.object(keys);
  const g = (k: string): Reader => (r.present ? r.get(k) : new Reader(new Locator('', undefined, undefined), [k], undefined));
  return {
    queueDepth: g('queueDepth').int(128, 1, 4096),
    // RFC 7143 §13.12-§13.14: 512 .. 2^24-1.
    maxRecvDataSegmentLength: g('maxRecvDataSegmentLength').int(262144, 512, 16777215),
    maxBurstLength: g('maxBurstLength').int(16776192, 512, 16777215),
    firstBurstLength: g('firstBurstLength').int(262144, 512, 16777215),
    maxOutstandingR2T: g('maxOutstandingR2T').int(16, 1, 65535),
    nopIntervalMs: g('nopInterval').duration(10_000),
    nopTimeoutMs: g('nopTimeout').duration(30_000),
    loginTimeoutMs: g('loginTimeout').duration(15_000),
    headerDigests: DIGEST_MODES[g('headerDigest').oneOf(['allowed', 'required', 'off'], 'allowed')],
    dataDigests: DIGEST_MODES[g('dataDigest').oneOf(['allowed', 'required', 'off'], 'allowed')],
  };
}

/**
 * CHAP credentials. The secret is given inline (`secret`) or read from an environment variable
 * (`secretEnv`), so it need not sit in the file. RFC 7143 §12.1.3 and the initiators: at least
 * 12 bytes (Windows also wants at most 16). Mutual CHAP with the same secret both ways would
 * let an attacker reflect challenges, so it is refused.
 */
function parseChap(r: Reader): ChapConfig | undefined {
  if (!r.present || r.value === false) return undefined;
  r.object(['username', 'secret', 'secretEnv', 'mutual']);
  const cred = (c: Reader): { username: string; secret: string } => {
    const username = c.get('username').required().string();
    const inline = c.get('secret');
    const env = c.get('secretEnv');
    if (inline.present === env.present) c.fail('give exactly one of "secret" or "secretEnv"', 'key', [...c.path, 'secret']);
    let secret: string;
    if (env.present) {
      const name = env.string();
      const v = process.env[name];
      secret = v ? v : env.fail(`environment variable ${name} is not set`);
    } else secret = inline.string();
    const at = env.present ? env : inline;
    if (Buffer.byteLength(secret) < 12) at.fail('CHAP secrets must be at least 12 bytes (RFC 7143 §12.1.3; Windows and open-iscsi refuse shorter)');
    if (Buffer.byteLength(secret) > 255) at.fail('CHAP secrets must be at most 255 bytes');
    return { username, secret };
  };
  const initiator = cred(r);
  const m = r.get('mutual');
  let mutual: ChapConfig['mutual'];
  if (m.present) {
    m.object(['username', 'secret', 'secretEnv']);
    mutual = cred(m);
    if (mutual.secret === initiator.secret) m.fail('the mutual CHAP secret must differ from the initiator secret (reflection attacks)');
  }
  return { ...initiator, mutual };
}

function parseAcl(r: Reader): AclConfig {
  if (!r.present) return { initiators: [], networks: [] };
  r.object(['initiators', 'networks']);
  const initiators = r
    .get('initiators')
    .array()
    .map((x) => x.string());
  const networks = r
    .get('networks')
    .array()
    .map((x) => {
      const v = x.string();
      if (!validCidr(v)) x.fail(`"${v}" is not an address or CIDR network`);
      return v;
    });
  return { initiators, networks };
}

function parseTarget(r: Reader, defaultChap: ChapConfig | undefined, baseDir: string): TargetConfig {
  r.object(['iqn', 'alias', 'portalGroupTag', 'chap', 'acl', 'luns']);
  const iqnR = r.get('iqn');
  const iqn = iqnR.string();
  if (!IQN_RE.test(iqn)) iqnR.fail(`"${iqn}" is not an iSCSI name (iqn.YYYY-MM.reverse.domain[:id], lower case)`);
  const luns = r
    .get('luns')
    .required()
    .array()
    .map((l) => parseLun(l, baseDir));
  const seen = new Set<number>();
  luns.forEach((l, i) => {
    if (seen.has(l.lun)) r.get('luns').at(i).fail(`LUN ${l.lun} is defined twice`);
    seen.add(l.lun);
  });
  const chapR = r.get('chap');
  return {
    iqn,
    alias: r.get('alias').optionalString(),
    portalGroupTag: r.get('portalGroupTag').int(1, 1, 65535),
    // `chap: false` turns a global default off for this target.
    chap: chapR.present ? parseChap(chapR) : defaultChap,
    acl: parseAcl(r.get('acl')),
    luns,
  };
}

function parseLun(r: Reader, baseDir: string): LunConfig {
  r.object(['lun', 'name', 'store', 'size', 'blockSize', 'cache', 'readOnly', 'snapshot', 'preferred', 'compression', 'encryption']);
  const nameR = r.get('name');
  const name = nameR.string();
  if (!validLunName(name)) nameR.fail(`"${name}" is not a valid LUN name (letters, digits, . _ -; up to 63)`);
  const snapR = r.get('snapshot');
  let snapshotOf: LunConfig['snapshotOf'];
  if (snapR.present) {
    const parts = snapR.string().split('@');
    if (parts.length !== 2 || !parts.every(validLunName)) snapR.fail('snapshot must be LUN@SNAPSHOT (the LUN it was taken of, and its name)');
    snapshotOf = { lun: parts[0], snapshot: parts[1] };
    if (r.get('size').present) r.get('size').fail('a snapshot LUN has the size of its snapshot: drop "size"');
    if (r.get('readOnly').present && !r.get('readOnly').bool(true)) r.get('readOnly').fail('a snapshot LUN is read-only');
  }
  const sizeR = r.get('size');
  const sizeBytes = snapshotOf ? 0 : sizeR.size();
  if (!snapshotOf && (sizeBytes <= 0 || sizeBytes % (1024 * 1024) !== 0)) sizeR.fail('size must be a positive multiple of 1MiB (the chunk size)');
  const blockSize = r.get('blockSize').int(512, 512, 4096);
  if (blockSize !== 512 && blockSize !== 4096) r.get('blockSize').fail('blockSize must be 512 (512e) or 4096 (4Kn)');
  const cache = r.get('cache');
  if (cache.present) cache.object(['size', 'mode', 'flushDelay', 'journal']);
  const cacheSize = cache.present ? cache.get('size') : undefined;
  const cacheBytes = cacheSize ? cacheSize.size(256 * 1024 * 1024) : 256 * 1024 * 1024;
  if (cacheBytes < 4 * 1024 * 1024) cacheSize?.fail('cache size must be at least 4MiB');
  const mode = cache.present ? cache.get('mode').oneOf(['write-back', 'write-through', 'journal'] as const, 'write-back') : 'write-back';
  const journalR = cache.present && cache.get('journal').present ? cache.get('journal') : undefined;
  if (mode === 'journal' && journalR?.bool(true) === false) journalR.fail('cache.mode journal uses the journal; drop "journal: false"');
  const encryption = parseEncryption(r.get('encryption'), baseDir);
  return {
    lun: r.get('lun').int(undefined, 0, 16383),
    name,
    store: r.get('store').oneOf(['file', 's3'] as const, 'file'),
    sizeBytes,
    blockSize: blockSize as 512 | 4096,
    cacheBytes,
    cacheMode: mode === 'write-back' ? 'write-back' : 'write-through',
    journal: mode === 'journal' || journalR?.bool(false) === true,
    flushDelayMs: cache.present ? cache.get('flushDelay').duration(200) : 200,
    readOnly: snapshotOf !== undefined || r.get('readOnly').bool(false),
    ...(snapshotOf ? { snapshotOf } : {}),
    ...(r.get('preferred').present ? { preferred: r.get('preferred').string() } : {}),
    compression: parseCompression(r.get('compression')),
    ...(encryption ? { encryption } : {}),
  };
}

function checkUnique(root: Reader, targets: readonly TargetConfig[]): void {
  const iqns = new Set<string>();
  const names = new Map<string, string>();
  targets.forEach((t, ti) => {
    if (iqns.has(t.iqn)) root.get('targets').at(ti).get('iqn').fail(`target ${t.iqn} is defined twice`);
    iqns.add(t.iqn);
    t.luns.forEach((l, li) => {
      const key = `${l.store}:${l.name}`;
      if (names.has(key)) {
        root
          .get('targets')
          .at(ti)
          .get('luns')
          .at(li)
          .get('name')
          .fail(`LUN name "${l.name}" is already used by ${names.get(key)}`);
      }
      names.set(key, `${t.iqn} LUN ${l.lun}`);
    });
  });
}
