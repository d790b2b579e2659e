/**
 * Session-ticket keys with forward secrecy (docs/key-service-protocol.md, "Session-ticket keys"):
 * random per epoch, stored only as KMS ciphertext (local KMS, encryption context naming deployment
 * and epoch) in a store that deletes them after retention; containers racing on a new epoch agree
 * on one key; nothing derives a key from a long-lived secret; a ticket from an expired epoch opens
 * nowhere, the key service included.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateAliasCommand, CreateKeyCommand, DecryptCommand, type KMSClient } from '@aws-sdk/client-kms';
import { startLocalKms, type LocalKms } from '../../../../local/kms';
import { createKmsClient } from '../../../../lambdas/key-service/backends/kms';
import { ConfigError, KeyServiceError } from '../../../../contract/key-service-errors';
import { createHandler } from '../../../../lambdas/key-service/handler';
import type { KeyServiceResponse, OkResponse, TicketKeysResult } from '../../../../contract/key-service-protocol';
import { KmsTicketKeyEnvelope, ticketKeyEncryptionContext } from '../../../../lambdas/key-service/ticket-key-envelope';
import { MemoryTicketKeyStore, type TicketKeyStore } from '../../../../lambdas/key-service/ticket-key-store';
import {
  StoredTicketKeys,
  keyExpiresAtMs,
  loadTicketKeysConfigFromEnv,
  TICKET_KEY_GRACE_SECONDS,
} from '../../../../lambdas/key-service/ticket-keys';
import { TicketProtector, type TicketState } from '../../../../edge-proxy/src/tls/tickets';
import {
  KeyOperationError,
  KeyServiceClient,
  type KeyServiceTarget,
  type TicketKeys,
} from '../../../../edge-proxy/src/keyless';

const credentials = { accessKeyId: 'local', secretAccessKey: 'local' };
const DEPLOYMENT = 'test';
const KEY_ALIAS = 'alias/keyless/test/ticket-keys';
const EPOCH_SECONDS = 3600;
const H = EPOCH_SECONDS * 1000;
let kms: LocalKms;
let client: KMSClient;

beforeAll(async () => {
  kms = await startLocalKms({ port: 0 });
  client = createKmsClient({ endpoint: kms.url, region: 'us-east-1', credentials });
  const key = await client.send(
    new CreateKeyCommand({
      KeySpec: 'SYMMETRIC_DEFAULT',
      KeyUsage: 'ENCRYPT_DECRYPT',
      Description: 'test ticket keys',
    }),
  );
  await client.send(new CreateAliasCommand({ AliasName: KEY_ALIAS, TargetKeyId: key.KeyMetadata!.KeyId! }));
});

afterAll(async () => {
  client?.destroy();
  await kms?.close();
});

/** A fake clock shared by the store, the key-service containers and the edges. */
function clock(start = 1_800_000_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

function envelope(deployment = DEPLOYMENT) {
  return new KmsTicketKeyEnvelope({ keyId: KEY_ALIAS, deployment, client });
}

/** One key-service container: its own cache, the shared store. */
function container(store: TicketKeyStore, now: () => number, epochsAccepted = 2) {
  return new StoredTicketKeys({ store, envelope: envelope(), epochSeconds: EPOCH_SECONDS, epochsAccepted, now });
}

function handlerOver(source: StoredTicketKeys) {
  return createHandler({ keys: [], backends: [], ticketKeys: source, logger: () => undefined });
}

function ok<T>(res: KeyServiceResponse): OkResponse<T> {
  if (!res.ok) throw new Error(`expected ok, got ${res.error.code}: ${res.error.message}`);
  return res as OkResponse<T>;
}

/** What the edge client hands the protector. */
function edgeKeys(r: TicketKeysResult): TicketKeys {
  const k = (x: { epoch: number; key: string }) => ({ epoch: x.epoch, key: Buffer.from(x.key, 'base64') });
  return {
    epochSeconds: r.epochSeconds,
    current: k(r.current),
    previous: k(r.previous),
    epochsAccepted: r.epochsAccepted,
    older: r.older?.map(k),
  };
}

const state: TicketState = {
  protocol: 'TLSv1.2',
  suite: 0xc02f,
  secret: crypto.randomBytes(48),
  issuedAt: 0,
  ageAdd: 0,
  lifetimeSeconds: 3600,
  extendedMasterSecret: true,
  serverName: 'localhost',
  alpn: '',
};

describe('random per-epoch keys in the store', () => {
  test('the first request makes a random key and stores only its KMS ciphertext, bound to deployment and epoch', async () => {
    const c = clock();
    const store = new MemoryTicketKeyStore(new Map(), c.now);
    const res = ok<TicketKeysResult>(await handlerOver(container(store, c.now))({ v: 2, id: 't', op: 'ticket_keys' }));
    const epoch = Math.floor(c.t / H);
    // The default answer has exactly the shape every edge release reads.
    expect(Object.keys(res.result).sort()).toEqual(['current', 'epochSeconds', 'previous']);
    expect(res.result.current.epoch).toBe(epoch);
    expect(res.result.previous.epoch).toBe(epoch - 1);
    const key = Buffer.from(res.result.current.key, 'base64');
    expect(key).toHaveLength(32);

    const record = store.records.get(epoch)!;
    expect(record.ciphertext.includes(key)).toBe(false);
    expect(record.expiresAtMs).toBe((epoch + 2) * H + TICKET_KEY_GRACE_SECONDS * 1000);
    const plain = await client.send(
      new DecryptCommand({
        CiphertextBlob: record.ciphertext,
        EncryptionContext: ticketKeyEncryptionContext(DEPLOYMENT, epoch),
      }),
    );
    expect(Buffer.from(plain.Plaintext!).equals(key)).toBe(true);
    // Under another epoch's or deployment's context the same ciphertext does not decrypt.
    for (const ctx of [ticketKeyEncryptionContext(DEPLOYMENT, epoch + 1), ticketKeyEncryptionContext('other', epoch)]) {
      await expect(
        client.send(new DecryptCommand({ CiphertextBlob: record.ciphertext, EncryptionContext: ctx })),
      ).rejects.toMatchObject({ name: 'InvalidCiphertextException' });
    }
    // No key was made for the previous epoch (nothing was sealed under it): a stand-in, never stored.
    expect(store.records.has(epoch - 1)).toBe(false);
  });

  test('cached per epoch in a container; the next epoch gets a new random key and the old one becomes previous', async () => {
    const c = clock();
    const store = new MemoryTicketKeyStore(new Map(), c.now);
    const h = handlerOver(container(store, c.now));
    const r1 = ok<TicketKeysResult>(await h({ v: 2, id: 'a', op: 'ticket_keys' })).result;
    kms.resetStats();
    const r2 = ok<TicketKeysResult>(await h({ v: 2, id: 'b', op: 'ticket_keys' })).result;
    expect(r2.current).toEqual(r1.current);
    expect(kms.stats.operations.Decrypt ?? 0).toBe(0);
    expect(kms.stats.operations.Encrypt ?? 0).toBe(0);
    c.t += H;
    const r3 = ok<TicketKeysResult>(await h({ v: 2, id: 'c', op: 'ticket_keys' })).result;
    expect(r3.previous).toEqual(r1.current);
    expect(r3.current.key).not.toBe(r1.current.key);
  });

  test('more epochs accepted: the answer lists them, newest first, and the edge accepts exactly those', async () => {
    const c = clock();
    const store = new MemoryTicketKeyStore(new Map(), c.now);
    const h = handlerOver(container(store, c.now, 3));
    const first = ok<TicketKeysResult>(await h({ v: 2, id: 'a', op: 'ticket_keys' })).result;
    const edge = new TicketProtector({ now: c.now });
    edge.setKeys(edgeKeys(first));
    const ticket = edge.seal(state)!;
    c.t += 2 * H;
    const later = ok<TicketKeysResult>(await h({ v: 2, id: 'b', op: 'ticket_keys' })).result;
    expect(later.epochsAccepted).toBe(3);
    expect(later.older).toEqual([first.current]);
    edge.setKeys(edgeKeys(later));
    expect(edge.open(ticket)).toEqual(state);
    c.t += H;
    edge.setKeys(edgeKeys(ok<TicketKeysResult>(await h({ v: 2, id: 'c', op: 'ticket_keys' })).result));
    expect(edge.open(ticket)).toBeUndefined();
  });

  test('a store or KMS failure is a typed error and is not cached', async () => {
    const c = clock();
    const inner = new MemoryTicketKeyStore(new Map(), c.now);
    let down = true;
    const flaky: TicketKeyStore = {
      get: (e) =>
        down
          ? Promise.reject(new KeyServiceError('unavailable', 'SSM GetParameter failed: InternalServerError'))
          : inner.get(e),
      create: (e, b, x) => inner.create(e, b, x),
      delete: (e) => inner.delete(e),
    };
    const h = handlerOver(container(flaky, c.now));
    const res = await h({ v: 2, id: 'a', op: 'ticket_keys' });
    expect(res.ok).toBe(false);
    expect(!res.ok && res.error.code).toBe('unavailable');
    down = false;
    expect(ok<TicketKeysResult>(await h({ v: 2, id: 'b', op: 'ticket_keys' })).result.current.key).toHaveLength(44);

    const wrongKey = new StoredTicketKeys({
      store: new MemoryTicketKeyStore(),
      envelope: new KmsTicketKeyEnvelope({ keyId: 'alias/keyless/test/missing', deployment: DEPLOYMENT, client }),
      epochSeconds: EPOCH_SECONDS,
      epochsAccepted: 2,
    });
    const res2 = await handlerOver(wrongKey)({ v: 2, id: 'c', op: 'ticket_keys' });
    expect(!res2.ok && res2.error).toEqual({
      code: 'internal',
      message: 'KMS Encrypt failed: NotFoundException (the ticket key, KEYLESS_TICKET_KEY_ID)',
    });
  });
});

describe('the edge client reads both answer shapes', () => {
  const direct = (h: (e: unknown) => Promise<unknown>): KeyServiceTarget => ({
    name: 'direct',
    invoke: async (r) => JSON.parse(JSON.stringify(await h(JSON.parse(JSON.stringify(r))))),
  });
  const answering = (result: unknown): KeyServiceTarget => ({
    name: 'fake',
    invoke: async (r) => ({ v: 2, id: r.id, ok: true, result }),
  });

  test('three epochs accepted: epochsAccepted and older reach the protector', async () => {
    const c = clock();
    const h = handlerOver(container(new MemoryTicketKeyStore(new Map(), c.now), c.now, 3));
    const t = await new KeyServiceClient({ target: direct(h) }).ticketKeys();
    expect(t.epochsAccepted).toBe(3);
    expect(t.older?.map((k) => k.epoch)).toEqual([t.current.epoch - 2]);
  });

  test('malformed extended answers are refused', async () => {
    const key = () => crypto.randomBytes(32).toString('base64');
    const base = { epochSeconds: 3600, current: { epoch: 10, key: key() }, previous: { epoch: 9, key: key() } };
    const same = key();
    for (const body of [
      { ...base, epochsAccepted: 3 },
      { ...base, epochsAccepted: 3, older: [] },
      { ...base, epochsAccepted: 2, older: [] },
      { ...base, epochsAccepted: 9, older: Array.from({ length: 7 }, (_, i) => ({ epoch: 8 - i, key: key() })) },
      { ...base, epochsAccepted: 3, older: [{ epoch: 7, key: key() }] },
      { ...base, epochsAccepted: 3, older: [{ epoch: 8, key: base.current.key }] },
      { ...base, previous: { epoch: 9, key: same }, epochsAccepted: 3, older: [{ epoch: 8, key: same }] },
    ]) {
      const err = await new KeyServiceClient({ target: answering(body) }).ticketKeys().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(KeyOperationError);
      expect((err as KeyOperationError).code).toBe('internal');
    }
  });
});

describe('containers racing on a new epoch', () => {
  test('many containers asking at once converge on one key: one conditional create wins, the others re-read', async () => {
    const c = clock();
    const store = new MemoryTicketKeyStore(new Map(), c.now);
    let creates = 0;
    let won = 0;
    // Every container reads "missing" before any create lands: the worst interleaving.
    let release!: () => void;
    const allRead = new Promise<void>((r) => (release = r));
    let reads = 0;
    const N = 8;
    const current = Math.floor(c.t / H);
    const racing: TicketKeyStore = {
      get: async (e) => {
        const v = await store.get(e);
        if (e === current && reads < N) {
          if (++reads === N) release();
          await allRead;
        }
        return v;
      },
      create: async (e, b, x) => {
        creates++;
        const created = await store.create(e, b, x);
        if (created) won++;
        return created;
      },
      delete: (e) => store.delete(e),
    };
    const containers = Array.from({ length: N }, () => container(racing, c.now));
    const results = await Promise.all(containers.map((k) => k.get()));
    expect(creates).toBe(N);
    expect(won).toBe(1);
    const keys = new Set(results.map((r) => r.current.key.toString('hex')));
    expect(keys.size).toBe(1);
    const stored = await envelope().open(results[0].current.epoch, (await store.get(results[0].current.epoch))!);
    expect(stored.equals(results[0].current.key)).toBe(true);
  });
});

describe('a ticket from an expired epoch cannot be opened by anything still running', () => {
  test('the store deleted its key, every container forgot it, the edges refuse it, and nothing can make it again', async () => {
    const c = clock();
    const store = new MemoryTicketKeyStore(new Map(), c.now);
    const a = container(store, c.now);
    const ha = handlerOver(a);
    const r = ok<TicketKeysResult>(await ha({ v: 2, id: 'a', op: 'ticket_keys' })).result;
    const epoch = r.current.epoch;
    const sealedKey = Buffer.from(r.current.key, 'base64');
    const edge = new TicketProtector({ now: c.now });
    edge.setKeys(edgeKeys(r));
    const ticket = edge.seal({ ...state, issuedAt: c.t })!;
    expect(edge.open(ticket)).toBeDefined();

    // Past the last accepted epoch and the grace period: the key service (same container, a new
    // container) and the edge (with or without a refresh) have nothing that opens the ticket.
    c.t = keyExpiresAtMs(epoch, { epochSeconds: EPOCH_SECONDS, epochsAccepted: 2 }) + 1;
    expect(await store.get(epoch)).toBeUndefined();
    expect(edge.open(ticket)).toBeUndefined(); // never refreshed (key service unreachable): wiped anyway
    for (const h of [ha, handlerOver(container(store, c.now))]) {
      const now = ok<TicketKeysResult>(await h({ v: 2, id: 'b', op: 'ticket_keys' })).result;
      const keys = [now.current, now.previous].map((k) => Buffer.from(k.key, 'base64'));
      expect(keys.some((k) => k.equals(sealedKey))).toBe(false);
      const fresh = new TicketProtector({ now: c.now });
      fresh.setKeys(edgeKeys(now));
      expect(fresh.open(ticket)).toBeUndefined();
      // Even with the ticket's epoch number forced onto a key it has: GCM refuses.
      expect(keys.some((k) => openWith(k, ticket))).toBe(false);
    }
  });

  test('the creator of a new epoch also deletes keys past retention, in case the store expires them late', async () => {
    const c = clock();
    const records = new Map<number, { ciphertext: Buffer; expiresAtMs: number }>();
    const lateStore = new MemoryTicketKeyStore(records, () => 0); // a store whose expiry never runs
    const k = container(lateStore, c.now);
    const epoch = (await k.get()).current.epoch;
    c.t += 3 * H; // epoch + 3: epoch's retention (two epochs + grace) ended an epoch ago
    await k.get();
    expect(records.has(epoch)).toBe(false);
    expect(records.has(epoch + 3)).toBe(true);
  });

  test('the edge wipes its keys once their last accepted epoch ends, even without a refresh', () => {
    const c = clock();
    const edge = new TicketProtector({ now: c.now });
    const epoch = Math.floor(c.t / H);
    const current = crypto.randomBytes(32);
    edge.setKeys({
      epochSeconds: EPOCH_SECONDS,
      current: { epoch, key: current },
      previous: { epoch: epoch - 1, key: crypto.randomBytes(32) },
    });
    const ticket = edge.seal(state)!;
    c.t = (epoch + 1) * H + 1; // just after the boundary, before the refresh: still opens and seals
    expect(edge.open(ticket)).toEqual(state);
    expect(edge.ready).toBe(true);
    c.t = (epoch + 1) * H + 60_001; // no refresh for a minute: resumes, but issues no new tickets
    expect(edge.open(ticket)).toEqual(state);
    expect(edge.ready).toBe(false);
    c.t = (epoch + 2) * H; // outside the window
    expect(edge.open(ticket)).toBeUndefined();
    expect(edge.ready).toBe(false);
    expect(edge.seal(state)).toBeUndefined();
  });
});

describe('no derivation from a long-lived key', () => {
  test('the same epoch gets unrelated keys in two stores under the same KMS key, and no MAC is ever computed', async () => {
    const c = clock();
    kms.resetStats();
    const one = await container(new MemoryTicketKeyStore(new Map(), c.now), c.now).get();
    const two = await container(new MemoryTicketKeyStore(new Map(), c.now), c.now).get();
    expect(one.current.epoch).toBe(two.current.epoch);
    expect(one.current.key.equals(two.current.key)).toBe(false);
    expect(Object.keys(kms.stats.operations).sort()).toEqual(['Encrypt']);
  });

  test('the key service has no GenerateMac code path and refuses the removed configuration', () => {
    const dir = path.resolve(__dirname, '../../../../lambdas/key-service');
    const sources = fs.readdirSync(dir, { recursive: true }).filter((f) => String(f).endsWith('.ts'));
    for (const f of sources)
      expect(fs.readFileSync(path.join(dir, String(f)), 'utf8')).not.toMatch(/GenerateMacCommand|ticketKeyMessage/);
    expect(() => loadTicketKeysConfigFromEnv({ KEYLESS_TICKET_MAC_KEY_ID: 'alias/keyless/prod/ticket-mac' })).toThrow(
      /KEYLESS_TICKET_MAC_KEY_ID: ticket keys are no longer derived/,
    );
  });
});

describe('configuration', () => {
  const base = {
    KEYLESS_TICKET_KEY_ID: 'alias/keyless/prod/ticket-keys',
    KEYLESS_TICKET_PARAMETER_PREFIX: '/keyless/prod/ticket-keys/',
    KEYLESS_DEPLOYMENT: 'prod',
  };

  test('defaults, bounds, and errors that name the variable', () => {
    expect(loadTicketKeysConfigFromEnv({})).toBeUndefined();
    expect(loadTicketKeysConfigFromEnv(base)).toEqual({
      keyId: base.KEYLESS_TICKET_KEY_ID,
      parameterPrefix: base.KEYLESS_TICKET_PARAMETER_PREFIX,
      deployment: 'prod',
      epochSeconds: 3600,
      epochsAccepted: 2,
    });
    expect(
      loadTicketKeysConfigFromEnv({
        ...base,
        KEYLESS_TICKET_EPOCH_SECONDS: '600',
        KEYLESS_TICKET_EPOCHS_ACCEPTED: '4',
      }),
    ).toMatchObject({ epochSeconds: 600, epochsAccepted: 4 });
    const bad: Array<[Record<string, string>, RegExp]> = [
      [{ ...base, KEYLESS_TICKET_EPOCH_SECONDS: '59' }, /^KEYLESS_TICKET_EPOCH_SECONDS: must be 60\.\.604800/],
      [{ ...base, KEYLESS_TICKET_EPOCH_SECONDS: '1e3' }, /^KEYLESS_TICKET_EPOCH_SECONDS: expected an integer/],
      [{ ...base, KEYLESS_TICKET_EPOCHS_ACCEPTED: '1' }, /^KEYLESS_TICKET_EPOCHS_ACCEPTED: must be 2\.\.8/],
      [{ ...base, KEYLESS_TICKET_EPOCHS_ACCEPTED: '9' }, /^KEYLESS_TICKET_EPOCHS_ACCEPTED: must be 2\.\.8/],
      [{ KEYLESS_TICKET_KEY_ID: 'alias/x', KEYLESS_DEPLOYMENT: 'prod' }, /^KEYLESS_TICKET_PARAMETER_PREFIX: not set/],
      [
        { KEYLESS_TICKET_PARAMETER_PREFIX: '/keyless/prod/ticket-keys/', KEYLESS_DEPLOYMENT: 'prod' },
        /^KEYLESS_TICKET_KEY_ID: not set/,
      ],
      [
        { ...base, KEYLESS_TICKET_PARAMETER_PREFIX: 'keyless/prod' },
        /^KEYLESS_TICKET_PARAMETER_PREFIX: expected a parameter path/,
      ],
      [
        { ...base, KEYLESS_TICKET_PARAMETER_PREFIX: '/aws/x/' },
        /^KEYLESS_TICKET_PARAMETER_PREFIX: expected a parameter path/,
      ],
      [{ ...base, KEYLESS_TICKET_KEY_ID: 'alias/x y' }, /^KEYLESS_TICKET_KEY_ID: not a valid KMS key identifier/],
      [{ ...base, KEYLESS_DEPLOYMENT: '' }, /^KEYLESS_DEPLOYMENT: set it to the deployment name/],
    ];
    for (const [env, message] of bad) expect(() => loadTicketKeysConfigFromEnv(env)).toThrow(message);
    expect(() => loadTicketKeysConfigFromEnv({ ...base, KEYLESS_TICKET_EPOCH_SECONDS: '59' })).toThrow(ConfigError);
  });
});

/** Decrypt a ticket body with `key` regardless of its epoch header: true if GCM accepts it. */
function openWith(key: Buffer, ticket: Buffer): boolean {
  try {
    const d = crypto.createDecipheriv('aes-256-gcm', key, ticket.subarray(5, 17));
    d.setAAD(ticket.subarray(0, 5));
    d.setAuthTag(ticket.subarray(ticket.length - 16));
    d.update(ticket.subarray(17, ticket.length - 16));
    d.final();
    return true;
  } catch {
    return false;
  }
}
