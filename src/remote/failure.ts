// How a failed S3 call is told: one line, never the secret. Per-object failures are ItemError
// unless the caller asks for another kind; an aborted call throws the abort reason unchanged.
import { STATUS_CODES } from 'node:http';
import { ItemError, SyncError, oneLine } from '../core/errors.js';

export interface SdkError { name?: string; message?: string; code?: string; $metadata?: { httpStatusCode?: number } }

export const AUTH_ERRORS = new Set(['InvalidAccessKeyId', 'SignatureDoesNotMatch', 'AccessDenied', 'Forbidden']);
export const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'ECONNRESET', 'ETIMEDOUT']);

export const statusOf = (err: unknown): number | undefined => (err as SdkError | undefined)?.$metadata?.httpStatusCode;

export const remoteChanged = (cause?: unknown): ItemError => new ItemError('remote object changed since it was listed', { cause });

/** `503 SlowDown: Please reduce your request rate.`, `connect ECONNREFUSED 127.0.0.1:9`, … */
export function describe(err: unknown): string {
  const e = (err ?? {}) as SdkError;
  const status = statusOf(err);
  const generic = !e.name || ['Error', 'UnknownError', 'AggregateError'].includes(e.name);
  const name = generic ? status && STATUS_CODES[status] : e.name;
  // A body the SDK could not parse (a proxy's HTML page, a JSON 413) leaves a long note instead
  // of a message; Node 20 reports a refused dual-stack connect with an empty message.
  const unreadable = e.message?.includes('Deserialization error') && (status === undefined || status < 300);
  const junk = !e.message || e.message === 'UnknownError' || e.message === name || e.message.includes('Deserialization error');
  // A 200 whose body does not parse would otherwise read as the error "200 OK".
  const message = unreadable ? 'the response could not be read' : junk ? (status ? undefined : e.code) : e.message;
  const head = [status, name].filter(Boolean).join(' ');
  return oneLine([head, message].filter(Boolean).join(': ') || String(err)).slice(0, 300);
}

export class Failure {
  constructor(private readonly secret: string) {}

  /** The error to throw for a failed call: the abort reason, our own errors as they are, else one line. */
  of(op: string, target: string, err: unknown, signal: AbortSignal | undefined, Kind = ItemError): unknown {
    if (signal?.aborted) return signal.reason;
    if (err instanceof SyncError) return err;
    return new Kind(this.redact(`S3 ${op} ${target}: ${describe(err)}`), { cause: err });
  }

  redact(text: string): string {
    return this.secret ? text.split(this.secret).join('***') : text;
  }
}
