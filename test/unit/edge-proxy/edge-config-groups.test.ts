/** Edge configuration of key-exchange groups: `groups` in the file, KEYLESS_GROUPS in the environment. */
import { loadEdgeConfig, parseEdgeConfig } from '../../../edge-proxy/src/config';
import { configError, edgeConfigError } from '../../helpers/config-error';

const minimal = {
  certificates: [{ chainFile: 'c.pem', keyName: 'localhost' }],
  keyServices: [{ functionName: 'keyless-key-service', region: 'eu-west-1' }],
  origin: 'http://127.0.0.1:8080',
};

describe('edge configuration: groups', () => {
  it('defaults to the post-quantum hybrid first, then the classic groups', () => {
    expect(parseEdgeConfig(minimal).groups).toEqual(['X25519MLKEM768', 'x25519', 'secp256r1', 'secp384r1']);
  });

  it('takes a list in preference order, names in any case', () => {
    expect(parseEdgeConfig({ ...minimal, groups: ['x25519', 'x25519mlkem768'] }).groups).toEqual([
      'x25519',
      'X25519MLKEM768',
    ]);
  });

  it('KEYLESS_GROUPS overrides the file, comma-separated', () => {
    const c = loadEdgeConfig(undefined, {
      KEYLESS_ORIGIN: minimal.origin,
      KEYLESS_KEY_SERVICES: 'ks',
      KEYLESS_CERT_DIR: '/tmp',
      KEYLESS_GROUPS: 'x25519, secp256r1',
    });
    expect(c.groups).toEqual(['x25519', 'secp256r1']);
  });

  it.each([
    [[], /non-empty list/],
    ['x25519', /non-empty list/],
    [['x25519', 'X448'], /"X448" is not a supported group.*X25519MLKEM768, x25519/],
    [['x25519', 'X25519'], /x25519 is listed twice/],
    [['X25519MLKEM768'], /only post-quantum hybrid.*Add a classic group/],
  ])('refuses groups %j, naming the field and the fix', (groups, message) => {
    const e = edgeConfigError({ ...minimal, groups });
    expect(e.field).toBe('groups');
    expect(e.message).toMatch(message);
  });

  it('names KEYLESS_GROUPS when the environment is wrong', () => {
    const e = configError(() =>
      loadEdgeConfig(undefined, {
        KEYLESS_ORIGIN: minimal.origin,
        KEYLESS_KEY_SERVICES: 'ks',
        KEYLESS_CERT_DIR: '/tmp',
        KEYLESS_GROUPS: 'x25519,p256',
      }),
    );
    expect(e.field).toBe('KEYLESS_GROUPS');
    expect(e.message).toMatch(/"p256" is not a supported group/);
  });
});
