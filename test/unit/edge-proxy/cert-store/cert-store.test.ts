/**
 * The certificate store's entry format (strict parsing, states, private keys refused) and the
 * directory backend (atomic writes, re-runnable removes, listing order).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  DirectoryCertificateStore,
  parseCertificateEntry,
  serializeCertificateEntry,
  type CertificateEntryInput,
} from '../../../../edge-proxy/src/cert-store';
import { ConfigError } from '../../../../edge-proxy/src/config';
import { makeTestPki, type TestPki } from '../../../helpers/certs';
import { rejection } from '../../../helpers/rejection';
import { configError } from '../../../helpers/config-error';

describe('certificate entry format', () => {
  let pki: TestPki;
  let chainPem: string;
  let keyPem: string;

  beforeAll(() => {
    pki = makeTestPki();
    const leaf = pki.leaf('site', 'p256', ['site.example.com']);
    chainPem = leaf.chainPem;
    keyPem = leaf.key.export({ type: 'pkcs8', format: 'pem' }) as string;
  });
  afterAll(() => pki.cleanup());

  it('accepts the pre-rotation format (no slot, no state) as live', () => {
    const e = parseCertificateEntry(
      'src',
      'site',
      JSON.stringify({ hostnames: ['site.example.com'], keyName: 'site', chainPem }),
    );
    expect(e).toEqual({
      id: 'site',
      source: 'src',
      hostnames: ['site.example.com'],
      keyName: 'site',
      chainPem,
      state: 'live',
    });
  });

  it.each(['staged', 'live', 'retiring'] as const)('reads state %s and the slot', (state) => {
    const e = parseCertificateEntry(
      'src',
      'site-2',
      JSON.stringify({ hostnames: [], keyName: 'site-2', chainPem, slot: 'site', state }),
    );
    expect(e.state).toBe(state);
    expect(e.slot).toBe('site');
    expect(e.hostnames).toEqual([]);
  });

  it('refuses unknown fields, unknown states and bad slots, naming the field', () => {
    const base = { hostnames: [], keyName: 'k', chainPem };
    expect(configError(() => parseCertificateEntry('src', 'k', JSON.stringify({ ...base, notAfter: 'x' }))).field).toBe(
      'src.notAfter',
    );
    const st = configError(() => parseCertificateEntry('src', 'k', JSON.stringify({ ...base, state: 'active' })));
    expect(st.field).toBe('src.state');
    expect(st.message).toMatch(/Use one of staged, live, retiring/);
    expect(configError(() => parseCertificateEntry('src', 'k', JSON.stringify({ ...base, slot: 'a/b' }))).field).toBe(
      'src.slot',
    );
    expect(configError(() => parseCertificateEntry('src', 'k', JSON.stringify({ ...base, slot: 7 }))).field).toBe(
      'src.slot',
    );
    expect(
      configError(() => parseCertificateEntry('src', 'k', JSON.stringify({ ...base, keyName: 'has space' }))).field,
    ).toBe('src.keyName');
    expect(configError(() => parseCertificateEntry('src', 'k', '')).message).toMatch(/has no value/);
  });

  it('refuses private keys wherever they hide, before parsing', () => {
    const hidden = configError(() =>
      parseCertificateEntry(
        'src',
        'k',
        JSON.stringify({ hostnames: [], keyName: 'k', chainPem, privateKeyPem: keyPem }),
      ),
    );
    expect(hidden.field).toBe('src');
    expect(hidden.message).toMatch(/PRIVATE KEY/);
    // Even in a value that is not JSON at all.
    expect(configError(() => parseCertificateEntry('src', 'k', keyPem)).message).toMatch(/PRIVATE KEY/);
    // And serialisation refuses to produce such a value.
    expect(() =>
      serializeCertificateEntry({ hostnames: [], keyName: 'k', chainPem: chainPem + keyPem, state: 'staged' }),
    ).toThrow(/PRIVATE KEY/);
  });

  it('serialises in a fixed order that parses back to the same entry', () => {
    const input: CertificateEntryInput = {
      hostnames: ['site.example.com'],
      keyName: 'site-2',
      chainPem,
      slot: 'site',
      state: 'staged',
    };
    const text = serializeCertificateEntry(input);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(['hostnames', 'keyName', 'chainPem', 'slot', 'state']);
    expect(parseCertificateEntry('x', 'site-2', text)).toEqual({ ...input, id: 'site-2', source: 'x' });
    expect(() => serializeCertificateEntry({ ...input, state: 'gone' as never })).toThrow(/state/);
  });
});

describe('directory certificate store', () => {
  let pki: TestPki;
  let dir: string;
  let store: DirectoryCertificateStore;
  let rsaPem: string;
  let ecPem: string;

  beforeAll(() => {
    pki = makeTestPki();
    rsaPem = pki.leaf('rsa', 'rsa2048', ['www.example.com']).chainPem;
    ecPem = pki.leaf('ec', 'p256', ['www.example.com']).chainPem;
  });
  afterAll(() => pki.cleanup());
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyless-certdir-'));
    store = new DirectoryCertificateStore(path.join(dir, 'certs'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a missing directory is an empty store; put creates it', async () => {
    expect(await store.list()).toEqual([]);
    await store.put({ hostnames: [], keyName: 'site-1', chainPem: rsaPem, slot: 'site', state: 'live' });
    expect(fs.readdirSync(path.join(dir, 'certs'))).toEqual(['site-1.json']);
    expect(store.location).toBe(`dir:${path.join(dir, 'certs')}`);
  });

  it('round-trips entries, sorted by id, and replaces an entry in place', async () => {
    await store.put({
      hostnames: ['www.example.com'],
      keyName: 'site-2',
      chainPem: ecPem,
      slot: 'site',
      state: 'staged',
    });
    await store.put({
      hostnames: ['www.example.com'],
      keyName: 'site-1',
      chainPem: rsaPem,
      slot: 'site',
      state: 'live',
    });
    let list = await store.list();
    expect(list.map((e) => [e.id, e.keyName, e.state])).toEqual([
      ['site-1', 'site-1', 'live'],
      ['site-2', 'site-2', 'staged'],
    ]);
    expect(list[0].source).toBe(path.join(dir, 'certs', 'site-1.json'));
    expect(list[1].chainPem).toBe(ecPem);
    await store.put({ ...list[1], state: 'live' });
    list = await store.list();
    expect(list.map((e) => e.state)).toEqual(['live', 'live']);
    // No temporary file is left behind.
    expect(fs.readdirSync(path.join(dir, 'certs')).sort()).toEqual(['site-1.json', 'site-2.json']);
  });

  it('writes under an explicit id (entries from before rotation keep theirs)', async () => {
    await store.put({ id: 'legacy', hostnames: [], keyName: 'localhost-rsa', chainPem: rsaPem, state: 'retiring' });
    const [e] = await store.list();
    expect([e.id, e.keyName, e.state, e.slot]).toEqual(['legacy', 'localhost-rsa', 'retiring', undefined]);
  });

  it('ignores hidden and temporary files and non-JSON files', async () => {
    await store.put({ hostnames: [], keyName: 'a', chainPem: rsaPem, state: 'live' });
    fs.writeFileSync(path.join(dir, 'certs', '.a.json.123.tmp'), 'half a value');
    fs.writeFileSync(path.join(dir, 'certs', 'README.txt'), 'notes');
    expect((await store.list()).map((e) => e.id)).toEqual(['a']);
  });

  it('refuses an invalid file, naming it; refuses private keys', async () => {
    fs.mkdirSync(path.join(dir, 'certs'));
    const file = path.join(dir, 'certs', 'bad.json');
    fs.writeFileSync(file, JSON.stringify({ hostnames: [], keyName: 'bad', chainPem: rsaPem, state: 'maybe' }));
    const e = await rejection(store.list());
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).field).toBe(`${file}.state`);
    const key = pki.leaf('k', 'p256', ['k.example.com']).key.export({ type: 'pkcs8', format: 'pem' }) as string;
    fs.writeFileSync(file, JSON.stringify({ hostnames: [], keyName: 'bad', chainPem: rsaPem + key }));
    expect((await rejection(store.list())).message).toMatch(/PRIVATE KEY/);
    fs.rmSync(file);
    expect(
      await rejection(store.put({ hostnames: [], keyName: 'bad', chainPem: rsaPem + key, state: 'live' })),
    ).toBeInstanceOf(ConfigError);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('refuses ids that are not file-name safe', async () => {
    for (const id of ['../escape', '.hidden', 'a/b', 'with:colon']) {
      expect(
        await rejection(store.put({ id, hostnames: [], keyName: 'a', chainPem: rsaPem, state: 'live' })),
      ).toBeInstanceOf(ConfigError);
      expect(await rejection(store.remove(id))).toBeInstanceOf(ConfigError);
    }
    expect(fs.existsSync(path.join(dir, 'escape.json'))).toBe(false);
  });

  it('remove is re-runnable', async () => {
    await store.put({ hostnames: [], keyName: 'a', chainPem: rsaPem, state: 'live' });
    await store.remove('a');
    await store.remove('a');
    expect(await store.list()).toEqual([]);
  });

  it('readers never see a partial entry while it is rewritten', async () => {
    await store.put({ hostnames: [], keyName: 'a', chainPem: rsaPem, state: 'live' });
    let writes = 0;
    let reads = 0;
    const writer = (async () => {
      for (let i = 0; i < 30; i++, writes++)
        await store.put({
          hostnames: [],
          keyName: 'a',
          chainPem: i % 2 ? rsaPem : ecPem,
          state: i % 2 ? 'live' : 'retiring',
        });
    })();
    let done = false;
    void writer.then(() => (done = true));
    while (!done) {
      const list = await store.list();
      expect(list).toHaveLength(1);
      reads++;
    }
    await writer;
    expect(writes).toBe(30);
    expect(reads).toBeGreaterThan(0);
  });
});
