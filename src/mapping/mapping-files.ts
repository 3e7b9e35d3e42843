import type { ConditionSpec } from '../hl7/condition.js';

/** The three kinds of mapping file, as docs/mapping.md and mapping.schema.json describe them. */

export interface RuleSpec {
  readonly from?: number;
  readonly component?: number;
  readonly to: string;
  readonly type?: string;
  readonly vocabulary?: string;
  readonly as?: 'code' | 'coding' | 'codeableConcept';
  readonly value?: unknown;
  readonly when?: ConditionSpec;
  readonly resource?: string;
}

export interface SegmentMapSpec {
  readonly segment: string;
  readonly resource: string;
  readonly description?: string;
  readonly rules: readonly RuleSpec[];
}

export interface DatatypeMapSpec {
  readonly datatype: string;
  readonly fhir: string;
  readonly description?: string;
  readonly rules: readonly RuleSpec[];
}

export type IdentitySpec =
  | 'identifier'
  | 'id'
  | { readonly system: string; readonly from: readonly string[] };

export interface EntrySpec {
  readonly name?: string;
  readonly segment: string;
  readonly map?: string;
  readonly maps?: readonly string[];
  readonly within?: readonly string[];
  readonly stopAt?: readonly string[];
  readonly parent?: readonly string[];
  readonly merge?: string;
  readonly into?: Readonly<Record<string, string>>;
  readonly at?: string;
  readonly refs?: Readonly<Record<string, string>>;
  readonly link?: Readonly<Record<string, string>>;
  readonly identity?: IdentitySpec;
  readonly request?: 'update' | 'create';
  readonly when?: ConditionSpec;
}

export interface SegmentOverrideSpec {
  readonly add?: readonly RuleSpec[];
  readonly remove?: readonly string[];
}

export interface MessageMapSpec {
  readonly message: string;
  readonly description?: string;
  readonly extends?: string;
  readonly accepts?: readonly string[];
  readonly ignore?: readonly string[];
  readonly resources?: readonly EntrySpec[];
  readonly remove?: readonly string[];
  readonly segments?: Readonly<Record<string, SegmentOverrideSpec>>;
}

export type MappingKind = 'messages' | 'segments' | 'datatypes';
