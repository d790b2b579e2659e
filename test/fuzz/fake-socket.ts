/**
 * An in-memory stand-in for the `net.Socket` under a TlsServerConnection: the fuzzer plays the
 * client by emitting 'data' and 'end', and reads back what the server wrote. No TCP, no timers of
 * its own, so thousands of connections a second fit on one core.
 */
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';

export class FakeSocket extends EventEmitter {
  readonly remoteAddress = '127.0.0.1';
  readonly remotePort = 40000;
  readonly localPort = 443;
  destroyed = false;
  /** Everything the server wrote, in order. */
  readonly written: Buffer[] = [];
  writtenBytes = 0;
  ended = false;

  write(data: Buffer | string, cb?: () => void): boolean {
    if (this.destroyed) return false;
    const b = typeof data === 'string' ? Buffer.from(data) : data;
    this.written.push(b);
    this.writtenBytes += b.length;
    cb?.();
    return true;
  }

  end(data?: Buffer): this {
    if (data) this.write(data);
    if (!this.ended) {
      this.ended = true;
      // Our side has already sent EOF (or will): once the server ends too, the socket closes.
      setImmediate(() => this.destroy());
    }
    return this;
  }

  destroy(): this {
    if (this.destroyed) return this;
    this.destroyed = true;
    setImmediate(() => this.emit('close', false));
    return this;
  }

  pause(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  setTimeout(): this {
    return this;
  }
  setNoDelay(): this {
    return this;
  }
  setKeepAlive(): this {
    return this;
  }
  address(): { address: string; family: string; port: number } {
    return { address: '127.0.0.1', family: 'IPv4', port: 443 };
  }

  asSocket(): Socket {
    return this as unknown as Socket;
  }

  /** The server's output. */
  output(): Buffer {
    return Buffer.concat(this.written);
  }
}
