/** A channel as the engine runs it: validated, defaults applied, frozen. Mirrors channel.schema.json. */
export interface ChannelConfig {
  readonly name: string;
  readonly description?: string;
  readonly enabled: boolean;
  readonly source: { readonly mllp: MllpSourceConfig };
  readonly ack: { readonly mode: 'original' | 'enhanced' };
  /** HL7 table 0211 name assumed when MSH-18 is empty. */
  readonly charset: string;
  /** Message-type patterns (`ORU^R01`, `ADT^A*`); undefined accepts every type. */
  readonly accept?: readonly string[];
  /** The file the channel came from, for error messages and `hl7e channels validate`. */
  readonly file: string;
}

export interface MllpSourceConfig {
  readonly host: string;
  readonly port: number;
  readonly tls?: {
    readonly cert: string;
    readonly key: string;
    readonly ca?: string;
    readonly requireClientCert: boolean;
    readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  };
  readonly allowFrom?: readonly string[];
  readonly maxMessageBytes: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections?: number;
}

/**
 * Compiles `accept` patterns once (STYLE habit 3) into a predicate over MSH-9.1 and MSH-9.2.
 * `*` matches any run of characters within one component; `ADT` alone matches every ADT event.
 */
export function compileAccept(
  patterns: readonly string[] | undefined,
): (code: string, event: string) => boolean {
  if (patterns === undefined) return () => true;
  const res = patterns.map((p) => {
    const [code = '', event] = p.split('^');
    return { code: glob(code), event: event === undefined ? undefined : glob(event) };
  });
  return (code, event) =>
    res.some((r) => r.code.test(code) && (r.event === undefined || r.event.test(event)));
}

function glob(p: string): RegExp {
  return new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}
