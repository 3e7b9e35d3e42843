/**
 * What one delivery attempt to a destination came to, as data: the queue decides backoff, breaker and
 * dead-letter from this, so nothing HTTP- or network-shaped is thrown across the module boundary.
 *
 * `body` holds what the destination answered (a transaction-response Bundle, an OperationOutcome). It may
 * echo PHI: store it encrypted, never log it (DESIGN rule 3).
 */
export type DeliveryOutcome =
  | {
      readonly kind: 'delivered';
      /** HTTP status; 0 for MLLP. */
      readonly status: number;
      /** The answer: a FHIR response, or the peer's ACK message. */
      readonly body: string;
      /** MLLP: MSA-1 of the ACK. */
      readonly ackCode?: string;
    }
  | {
      readonly kind: 'retry';
      /**
       * `status`: the destination answered with a retryable status; `timeout`/`network`: no answer;
       * `auth`: credentials could not be obtained or were refused (a fault of the destination's
       * configuration, not of the message, so it must not dead-letter messages one by one).
       * MLLP: `nak` — the peer answered AE/CE; `ack-timeout` — no ACK in time: the peer may hold the
       * message, so the destination's `onAckTimeout` decides between resending and holding it.
       */
      readonly reason: 'status' | 'timeout' | 'network' | 'auth' | 'nak' | 'ack-timeout';
      readonly status?: number;
      readonly retryAfterMs?: number;
      /** conditional-put mode: the entry that failed; entries before it were applied. */
      readonly entryIndex?: number;
      /** MLLP: MSA-1 of a NAK (AE/CE); `body` its ACK message, kept encrypted like any answer. */
      readonly ackCode?: string;
      readonly body?: string;
      /**
       * `network` that was the TLS handshake's doing: the verification or handshake code (e.g.
       * UNABLE_TO_VERIFY_LEAF_SIGNATURE, ERR_TLS_CERT_ALTNAME_INVALID, CERT_PIN_MISMATCH).
       */
      readonly tlsError?: string;
    }
  | {
      readonly kind: 'rejected';
      /** HTTP status; 0 for MLLP (and for an entry the engine could not send). */
      readonly status: number;
      readonly body: string;
      /** MLLP: MSA-1 of the ACK (AR/CR). */
      readonly ackCode?: string;
      /** conditional-put mode: the entry that failed; entries before it were applied. */
      readonly entryIndex?: number;
    };

/**
 * How HTTP answers are classified (STYLE habit 4: policy as data, in one place).
 *
 * Retry-After (RFC 9110 §10.2.3) is either delay-seconds or an HTTP-date (IMF-fixdate, §5.6.7); it is
 * honoured on any retryable answer and capped by the caller's `maxRetryAfterMs`, so a destination cannot
 * park a queue for days.
 */
export const HTTP_OUTCOME_POLICY = {
  /**
   * 408 Request Timeout, 425 Too Early (RFC 8470), 429 Too Many Requests (RFC 6585), 500/502/503/504.
   * Every other 5xx retries as well (`retryAnyServerError`); every other 4xx is permanent.
   */
  retryStatuses: [408, 425, 429, 500, 502, 503, 504] as readonly number[],
  retryAnyServerError: true,
  /** Credentials refused: the cached credential is dropped and the request repeated once (fhir-client.ts). */
  authStatuses: [401] as readonly number[],
  /** Default cap of a Retry-After the destination asks for. */
  maxRetryAfterMs: 300_000,
} as const;

export function isRetryableStatus(status: number): boolean {
  return (
    HTTP_OUTCOME_POLICY.retryStatuses.includes(status) ||
    (HTTP_OUTCOME_POLICY.retryAnyServerError && status >= 500 && status <= 599)
  );
}

/**
 * Retry-After → milliseconds from `now`, capped at `maxMs`; undefined when absent or malformed.
 * A date in the past means "now" (0).
 */
export function parseRetryAfter(
  value: string | null | undefined,
  now: number,
  maxMs: number = HTTP_OUTCOME_POLICY.maxRetryAfterMs,
): number | undefined {
  if (value === null || value === undefined) return undefined;
  const text = value.trim();
  let ms: number;
  if (/^\d+$/.test(text)) {
    ms = Number(text) * 1000;
  } else {
    // All three HTTP-date forms (IMF-fixdate, rfc850, asctime) open with a day name; Date.parse alone
    // would also take `-5` or `2026`.
    if (!/^[A-Za-z]{3}/.test(text)) return undefined;
    // asctime carries no zone; every HTTP-date is GMT, whatever the engine's local zone.
    const at = Date.parse(/GMT$/.test(text) ? text : `${text} GMT`);
    if (Number.isNaN(at)) return undefined;
    ms = Math.max(0, at - now);
  }
  return Math.min(ms, maxMs);
}

/** The outcome of one HTTP answer (401 handling aside, which needs the auth provider). */
export function classifyResponse(
  status: number,
  body: string,
  retryAfter: string | null,
  opts: { now: number; maxRetryAfterMs?: number },
): DeliveryOutcome {
  if (status >= 200 && status <= 299) return { kind: 'delivered', status, body };
  if (isRetryableStatus(status)) {
    const retryAfterMs = parseRetryAfter(retryAfter, opts.now, opts.maxRetryAfterMs);
    return retryAfterMs === undefined
      ? { kind: 'retry', reason: 'status', status }
      : { kind: 'retry', reason: 'status', status, retryAfterMs };
  }
  if (HTTP_OUTCOME_POLICY.authStatuses.includes(status)) return { kind: 'retry', reason: 'auth', status };
  // Other 4xx, and 1xx/3xx (redirects are not followed: an Authorization header must not travel to
  // wherever a Location points), cannot succeed by repeating the same request.
  return { kind: 'rejected', status, body };
}
