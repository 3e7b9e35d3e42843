// hl7-standard 1.0.4 ships no types; just the part of its API the benchmark uses (see its src/api.js).
declare module 'hl7-standard' {
  type Hl7StandardValue = string | Record<string, unknown> | unknown[] | null | undefined;

  class HL7 {
    constructor(
      data?: string,
      opts?: { subComponents?: string; repeatingFields?: string; lineEndings?: string },
    );
    /** Parses `raw`; throws (or calls back with) an Error on data it cannot read. */
    transform(cb?: (err: Error | null, data: unknown) => void, batch?: boolean): void;
    /** Dot notation: `PID.5.1`; MSH fields numbered as in the standard (MSH.9 is the message type). */
    get(field: string, index?: number, sectionIndex?: number, subIndex?: number): Hl7StandardValue;
    build(): string;
  }

  export = HL7;
}
