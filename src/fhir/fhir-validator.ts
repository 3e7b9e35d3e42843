/**
 * FHIR R4 validation of the engine's output, offline, with medplum's validator (structure, cardinality,
 * primitive formats, invariants) plus a check medplum leaves out: `code` values against `required`
 * bindings whose value set can be enumerated (an unmapped `gender` would otherwise pass here and fail at
 * the destination).
 *
 * No PHI leaves this module: medplum's issue texts may quote values (`Invalid reference: got "…"`), so an
 * issue keeps only its FHIRPath expression (each step checked to be an element name or an index), the
 * OperationOutcome issue code and a fixed category chosen from medplum's fixed message templates.
 */
import { OperationOutcomeError, validateResource } from '@medplum/core';
import { EngineError } from '../errors.js';
import { loadFhirDefinitions } from './fhir-definitions.js';
import type { Bundle, Resource } from './fhir-types.js';
import { findInvalidCodes } from './required-bindings.js';

export type FhirIssueCategory =
  | 'missing required'
  | 'unknown property'
  | 'wrong type'
  | 'invalid format'
  | 'invalid number'
  | 'empty value'
  | 'too long'
  | 'cardinality'
  | 'pattern mismatch'
  | 'reference type'
  | 'choice type'
  | 'constraint'
  | 'invalid code'
  | 'unresolved reference'
  | 'unknown resource type'
  | 'processing'
  | 'other';

export interface FhirIssue {
  /** The resource the issue is in (for a Bundle entry: the entry's resource type). */
  resourceType: string;
  /** FHIRPath expression as medplum reports it: `Patient.gender`, `Bundle.entry[2].resource.status`. */
  path: string;
  /** OperationOutcome issue type: `structure`, `invariant`, `code-invalid`, `not-found`, `processing`, … */
  code: string;
  severity: 'error' | 'warning';
  category: FhirIssueCategory;
  /** The invariant's key (`obs-6`, `bdl-7`) when `category` is `constraint`. */
  constraint?: string;
}

interface MedplumIssue {
  severity?: string;
  code?: string;
  details?: { text?: string };
  expression?: string[];
}

/** Fixed prefixes of medplum's issue texts (src/typeschema/validation.ts, 4.5.2) → category. */
const CATEGORIES: readonly (readonly [string, FhirIssueCategory])[] = [
  ['Missing required property', 'missing required'],
  ['Invalid additional property', 'unknown property'],
  ['Invalid JSON type', 'wrong type'],
  ['Invalid numeric value', 'invalid number'],
  ['Expected number to be', 'invalid number'],
  ['Expected array of values', 'cardinality'],
  ['Expected single value', 'cardinality'],
  ['Invalid number of values', 'cardinality'],
  ['Incorrect number of values provided for slice', 'cardinality'],
  ['Invalid empty', 'empty value'],
  ['Invalid null value', 'empty value'],
  ['Invalid undefined value', 'empty value'],
  ['String must contain non-whitespace', 'empty value'],
  ['String cannot be larger', 'too long'],
  ['Value did not match expected pattern', 'pattern mismatch'],
  ['Invalid reference', 'reference type'],
  ['Conflicting choice of type', 'choice type'],
  ['Type of primitive extension', 'choice type'],
  ['Constraint ', 'constraint'],
  ['Unknown data type', 'unknown resource type'],
  ['Missing resource type', 'unknown resource type'],
  ['Error evaluating invariant', 'processing'],
];

/**
 * Validates one resource (a Bundle includes its entries' resources: medplum crawls into them). Returns
 * every issue, warnings included; the resource is valid when none has severity `error`.
 */
export function validateFhirResource(resource: Resource): FhirIssue[] {
  loadFhirDefinitions();
  const issues: FhirIssue[] = [];
  let raw: MedplumIssue[];
  try {
    raw = validateResource(resource as never) as MedplumIssue[];
  } catch (err) {
    if (!(err instanceof OperationOutcomeError)) {
      // A crash inside the validator (malformed input it did not expect): its message is not ours to copy.
      return [issueAt(resource, safeType(resource?.resourceType), 'processing', 'error', 'processing')];
    }
    raw = (err.outcome.issue ?? []) as MedplumIssue[];
  }
  for (const m of raw) {
    const text = m.details?.text ?? '';
    // A Bundle-local `urn:uuid:` reference names no type, so medplum cannot check it against the
    // element's target types and warns; `validateBundle` checks instead that it resolves to an entry.
    if (m.severity === 'warning' && text.startsWith('Invalid reference: got "urn:')) continue;
    const issue = issueAt(
      resource,
      m.expression?.[0] ?? safeType(resource?.resourceType),
      m.code ?? 'processing',
      m.severity === 'warning' || m.severity === 'information' ? 'warning' : 'error',
      categorize(text),
    );
    if (issue.category === 'constraint') {
      const key = /^Constraint ([a-z][a-z0-9]*-\d+) /.exec(text)?.[1];
      if (key) issue.constraint = key;
    }
    issues.push(issue);
  }
  checkRequiredBindings(resource, issues);
  return issues;
}

/**
 * Validates a Bundle and, in the same pass, every entry's resource; then checks that each `urn:uuid:`
 * reference names the fullUrl of an entry (a transaction cannot resolve it otherwise).
 */
export function validateBundle(bundle: Bundle): FhirIssue[] {
  const issues = validateFhirResource(bundle);
  const fullUrls = new Set<string>();
  for (const entry of bundle.entry ?? []) if (typeof entry?.fullUrl === 'string') fullUrls.add(entry.fullUrl);
  (bundle.entry ?? []).forEach((entry, i) => {
    const resource = entry?.resource;
    if (resource && typeof resource === 'object') {
      findLocalReferences(resource, `Bundle.entry[${i}].resource`, (ref, path) => {
        if (!fullUrls.has(ref)) {
          issues.push(issueAt(bundle, path, 'not-found', 'error', 'unresolved reference'));
        }
      });
    }
  });
  return issues;
}

export function hasErrors(issues: readonly FhirIssue[]): boolean {
  return issues.some((i) => i.severity === 'error');
}

/** The engine error for an issue: codes and a path only, as the error registry requires. */
export function toEngineError(issue: FhirIssue): EngineError {
  return new EngineError('FHIR_INVALID', {
    resourceType: issue.resourceType,
    path: issue.path,
    issue: issue.code,
    category: issue.category,
    constraint: issue.constraint,
  });
}

function categorize(text: string): FhirIssueCategory {
  if (/^Invalid \w+ format$/.test(text)) return 'invalid format';
  for (const [prefix, category] of CATEGORIES) if (text.startsWith(prefix)) return category;
  return 'other';
}

function issueAt(
  root: Resource,
  path: string,
  code: string,
  severity: FhirIssue['severity'],
  category: FhirIssueCategory,
): FhirIssue {
  const safePath = sanitizePath(path);
  return {
    resourceType: resourceTypeAt(root, safePath),
    path: safePath,
    code: /^[a-z-]{1,40}$/.test(code) ? code : 'processing',
    severity,
    category,
  };
}

/** An element name (with `[x]` or `_` for primitive extensions) and an optional index; anything else → `?`. */
const PATH_STEP = /^_?[A-Za-z][A-Za-z0-9]{0,63}(\[x\])?(\[\d{1,6}\])?$/;

/**
 * Keeps the expression only where every step is shaped like an element name: an unknown property's name is
 * a JSON key, and a key must never smuggle content into an error.
 */
function sanitizePath(path: string): string {
  return path
    .split('.')
    .slice(0, 32)
    .map((step) => (PATH_STEP.test(step) ? step : '?'))
    .join('.');
}

function safeType(type: unknown): string {
  return typeof type === 'string' && /^[A-Z][A-Za-z]{0,63}$/.test(type) ? type : '?';
}

/** For `Bundle.entry[3].resource…`, the type of that entry's resource; else the root's type. */
function resourceTypeAt(root: Resource, path: string): string {
  const m = /^Bundle\.entry\[(\d+)\]\.resource(\.|$)/.exec(path);
  if (m && root.resourceType === 'Bundle') {
    const entry = (root as Bundle).entry?.[Number(m[1])];
    return safeType(entry?.resource?.resourceType);
  }
  return safeType(root?.resourceType);
}

function checkRequiredBindings(resource: Resource, issues: FhirIssue[]): void {
  if (typeof resource?.resourceType !== 'string') return;
  for (const path of findInvalidCodes(resource)) {
    issues.push(issueAt(resource, path, 'code-invalid', 'error', 'invalid code'));
  }
}

function findLocalReferences(node: unknown, path: string, onRef: (ref: string, path: string) => void): void {
  if (Array.isArray(node)) {
    node.forEach((item, i) => {
      findLocalReferences(item, `${path}[${i}]`, onRef);
    });
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const obj = node as Record<string, unknown>;
  if (typeof obj.reference === 'string' && obj.reference.startsWith('urn:uuid:')) onRef(obj.reference, path);
  for (const [key, value] of Object.entries(obj)) {
    if (value !== null && typeof value === 'object') findLocalReferences(value, `${path}.${key}`, onRef);
  }
}
