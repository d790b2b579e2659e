/**
 * The edge's own metrics, in the same in-memory registry as the key-service client's (so one
 * `/metrics` page renders both in Prometheus text format). Names follow Prometheus conventions.
 *
 *   keyless_edge_handshakes_total{protocol,suite,group,kind,result,alert}  handshakes that ended
 *       kind: full | resumed (unknown when it failed); result: ok | alert_sent | alert_received |
 *       closed (the peer closed TCP without an alert) | error; alert: the alert name sent or
 *       received ('' when none); protocol/suite/group '' when unknown
 *   keyless_edge_handshake_duration_seconds{protocol,kind}  completed handshakes, accept → client Finished
 *   keyless_edge_key_operations_avoided_total           resumed handshakes: each would have cost one key operation
 *   keyless_edge_tickets_rejected_total{reason}         presented tickets/PSKs that did not open (full handshake instead):
 *       no_keys | malformed | expired_epoch | unknown_epoch | undecryptable
 *   keyless_edge_admission_rejections_total{reason}     full handshakes refused: pending_limit | client_rate | key_budget
 *   keyless_edge_admission_pending                      full handshakes waiting for the key service
 *   keyless_edge_connections_total                      TCP connections accepted
 *   keyless_edge_active_connections                     connections open now (handshaking or established)
 *   keyless_edge_bytes_total{direction}                 bytes on the wire (TLS records), in | out
 *   keyless_edge_draining                               1 while draining after SIGTERM
 *   keyless_edge_certificate_reloads_total{result}      SIGHUP reloads: ok | error
 *   keyless_edge_tcp_connections_total{result}          tcp mode: connections forwarded, connected | connect_failed
 *   keyless_edge_tcp_origin_connect_failures_total{reason}  tcp mode: origin connects that failed, refused | timeout | unreachable | error
 *   keyless_edge_tcp_bytes_total{direction}             tcp mode: plaintext bytes forwarded, to_origin | to_client
 */
import type { Socket } from 'node:net';
import type { AdmissionReason } from '../keyless/admission';
import { MetricsRegistry, type Counter, type Gauge, type Histogram } from './metrics-registry';
import { LATENCY_BUCKETS_SECONDS } from '../keyless/client-metrics';
import { PeerClosedError, type HandshakeError } from '../tls/connection';
import type { TicketRejection } from '../tls/tickets';
import type { OriginConnectFailure, TcpForwardMetrics } from '../proxy/tcp-forward';

export interface HandshakeFacts {
  protocol?: string;
  cipher?: string;
  group?: string;
  resumed?: boolean;
  /** Accept → handshake complete, in milliseconds. */
  handshakeMs?: number;
}

export class EdgeMetrics implements TcpForwardMetrics {
  readonly handshakes: Counter<'protocol' | 'suite' | 'group' | 'kind' | 'result' | 'alert'>;
  readonly admissionRejections: Counter<'reason'>;
  readonly admissionPending: Gauge;
  readonly connections: Counter;
  readonly activeConnections: Gauge;
  readonly bytes: Counter<'direction'>;
  readonly draining: Gauge;
  readonly certificateReloads: Counter<'result'>;
  readonly handshakeDuration: Histogram<'protocol' | 'kind'>;
  readonly keyOperationsAvoided: Counter;
  readonly ticketsRejected: Counter<'reason'>;
  readonly tcpConnections: Counter<'result'>;
  readonly tcpOriginConnectFailures: Counter<'reason'>;
  readonly tcpForwardedBytes: Counter<'direction'>;
  /** Open sockets and the bytes already counted for each. */
  private readonly sockets = new Map<Socket, { read: number; written: number }>();

  constructor(readonly registry: MetricsRegistry = new MetricsRegistry()) {
    this.handshakes = registry.counter(
      'keyless_edge_handshakes_total',
      'TLS handshakes by protocol, cipher suite, group, kind (full/resumed), result and alert.',
      ['protocol', 'suite', 'group', 'kind', 'result', 'alert'],
    );
    this.admissionRejections = registry.counter(
      'keyless_edge_admission_rejections_total',
      'Full handshakes refused by admission control (handshake_failure sent), by reason.',
      ['reason'],
    );
    this.admissionPending = registry.gauge(
      'keyless_edge_admission_pending',
      'Full handshakes waiting for the key service now.',
    );
    this.connections = registry.counter(
      'keyless_edge_connections_total',
      'TCP connections accepted on the TLS listener.',
    );
    this.activeConnections = registry.gauge(
      'keyless_edge_active_connections',
      'Connections open now (handshaking or established).',
    );
    this.bytes = registry.counter(
      'keyless_edge_bytes_total',
      'Bytes on the wire on the TLS listener (TLS records, PROXY header included), by direction.',
      ['direction'],
    );
    this.draining = registry.gauge('keyless_edge_draining', '1 while the edge is draining after SIGTERM, else 0.');
    this.draining.set({}, 0);
    this.certificateReloads = registry.counter(
      'keyless_edge_certificate_reloads_total',
      'Certificate reloads (SIGHUP), by result.',
      ['result'],
    );
    this.activeConnections.collect = (g) => g.set({}, this.sockets.size);
    this.handshakeDuration = registry.histogram(
      'keyless_edge_handshake_duration_seconds',
      'Completed TLS handshakes, from accepting the connection to verifying the client Finished (client round trips and the key operation included), by protocol and kind.',
      ['protocol', 'kind'],
      LATENCY_BUCKETS_SECONDS,
    );
    this.keyOperationsAvoided = registry.counter(
      'keyless_edge_key_operations_avoided_total',
      'Key operations (KMS requests) avoided: one per resumed handshake, which a full handshake would have cost.',
    );
    this.keyOperationsAvoided.inc({}, 0);
    this.ticketsRejected = registry.counter(
      'keyless_edge_tickets_rejected_total',
      'Session tickets (TLS 1.2) and PSK identities (TLS 1.3) that did not open, so the client got a full handshake instead, by reason.',
      ['reason'],
    );
    this.tcpConnections = registry.counter(
      'keyless_edge_tcp_connections_total',
      'tcp proxy mode: TLS connections forwarded, by whether the origin connection was made.',
      ['result'],
    );
    this.tcpOriginConnectFailures = registry.counter(
      'keyless_edge_tcp_origin_connect_failures_total',
      'tcp proxy mode: origin connections that failed (the client got close_notify), by reason.',
      ['reason'],
    );
    this.tcpForwardedBytes = registry.counter(
      'keyless_edge_tcp_bytes_total',
      'tcp proxy mode: plaintext bytes forwarded (PROXY header excluded), by direction.',
      ['direction'],
    );
    this.bytes.inc({ direction: 'in' }, 0);
    this.bytes.inc({ direction: 'out' }, 0);
  }

  /** Tracks one accepted TCP socket: counts it, its bytes, and its lifetime. */
  trackSocket(socket: Socket): void {
    this.connections.inc({});
    this.sockets.set(socket, { read: 0, written: 0 });
    socket.once('close', () => {
      this.countBytes(socket);
      this.sockets.delete(socket);
    });
  }

  handshakeSucceeded(facts: HandshakeFacts): void {
    const kind = facts.resumed ? 'resumed' : 'full';
    this.handshakes.inc({
      protocol: facts.protocol ?? '',
      suite: facts.cipher ?? '',
      group: facts.group ?? '',
      kind,
      result: 'ok',
      alert: '',
    });
    if (facts.handshakeMs !== undefined)
      this.handshakeDuration.observe({ protocol: facts.protocol ?? '', kind }, facts.handshakeMs / 1000);
    if (facts.resumed) this.keyOperationsAvoided.inc({});
  }

  ticketRejected(reason: TicketRejection): void {
    this.ticketsRejected.inc({ reason });
  }

  handshakeFailed(err: Pick<HandshakeError, 'sentAlert' | 'receivedAlert'> & { cause?: unknown }): void {
    const result = err.sentAlert
      ? 'alert_sent'
      : err.receivedAlert
        ? 'alert_received'
        : err.cause instanceof PeerClosedError
          ? 'closed'
          : 'error';
    this.handshakes.inc({
      protocol: '',
      suite: '',
      group: '',
      kind: 'unknown',
      result,
      alert: err.sentAlert ?? err.receivedAlert ?? '',
    });
  }

  tcpConnection(result: 'connected' | 'connect_failed'): void {
    this.tcpConnections.inc({ result });
  }

  originConnectFailed(reason: OriginConnectFailure): void {
    this.tcpOriginConnectFailures.inc({ reason });
  }

  tcpBytes(direction: 'to_origin' | 'to_client', bytes: number): void {
    this.tcpForwardedBytes.inc({ direction }, bytes);
  }

  admissionRejected(reason: AdmissionReason): void {
    this.admissionRejections.inc({ reason });
  }

  /** Brings byte counters up to date with the open sockets (call before rendering). */
  collect(): void {
    for (const s of this.sockets.keys()) this.countBytes(s);
  }

  renderPrometheus(): string {
    this.collect();
    return this.registry.renderPrometheus();
  }

  private countBytes(socket: Socket): void {
    const seen = this.sockets.get(socket);
    if (!seen) return;
    const read = socket.bytesRead;
    const written = socket.bytesWritten;
    if (read > seen.read) this.bytes.inc({ direction: 'in' }, read - seen.read);
    if (written > seen.written) this.bytes.inc({ direction: 'out' }, written - seen.written);
    seen.read = read;
    seen.written = written;
  }
}
