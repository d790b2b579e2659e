/** A raw TCP peer: sends bytes, collects what the server answers until it closes (or a deadline). */
import * as net from 'node:net';

export interface RawExchange {
  received: Buffer;
  closed: boolean;
  /** The fatal alert description if the server's first alert record is in the clear. */
  plainAlert?: number;
}

export function rawExchange(port: number, chunks: Buffer[], waitMs = 3000, gapMs = 0): Promise<RawExchange> {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    const got: Buffer[] = [];
    let closed = false;
    const done = (): void => {
      clearTimeout(timer);
      const received = Buffer.concat(got);
      let plainAlert: number | undefined;
      for (let off = 0; off + 5 <= received.length; ) {
        const len = received.readUInt16BE(off + 3);
        if (received[off] === 21 && len === 2) {
          plainAlert = received[off + 6];
          break;
        }
        off += 5 + len;
      }
      sock.destroy();
      resolve({ received, closed, plainAlert });
    };
    const timer = setTimeout(done, waitMs);
    sock.on('data', (d) => got.push(d));
    sock.on('error', () => undefined);
    sock.on('close', () => {
      closed = true;
      done();
    });
    sock.on('connect', async () => {
      for (const c of chunks) {
        if (sock.destroyed) break;
        sock.write(c);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}
