/**
 * The Host header check of the local endpoints (local KMS, local Lambda, ...). They listen on
 * loopback only, but a web page can still reach loopback through a name it controls that resolves to
 * 127.0.0.1 (DNS rebinding); the browser then sends that name as Host. Only loopback names pass.
 * This stops web pages, not local users: the local stack trusts every user of the machine
 * (README.md, "Quick start").
 */
export function loopbackHostHeader(host: string | undefined): boolean {
  if (!host) return false;
  const m = /^(\[[^\]]+\]|[^:]+)(?::\d+)?$/.exec(host);
  if (!m) return false;
  const name = m[1].replace(/^\[|\]$/g, '').toLowerCase();
  return name === 'localhost' || name === '::1' || /^127(\.\d{1,3}){3}$/.test(name);
}
