import { existsSync } from 'node:fs';
import { formatProblem, readYamlFile } from '../config/yaml-file.js';
import { EngineError } from '../errors.js';

export const ROLES = ['analyst', 'oncall', 'auditor', 'admin'] as const;
export type Role = (typeof ROLES)[number];

/** What each operation needs (policy as data): any one of these roles. */
export const PERMISSIONS = {
  status: ['analyst', 'oncall', 'auditor', 'admin'],
  'messages.list': ['analyst', 'oncall', 'auditor', 'admin'],
  'messages.show': ['analyst', 'oncall', 'auditor', 'admin'],
  /** Decrypting content (raw, FHIR, a replay preview's diff): PHI. */
  'messages.reveal': ['oncall', 'admin'],
  /** De-identified export (Safe Harbor): no PHI leaves, so analysts may too. */
  'messages.export': ['analyst', 'oncall', 'admin'],
  replay: ['oncall', 'admin'],
  'audit.list': ['auditor', 'admin'],
  'audit.verify': ['auditor', 'admin'],
  'archive.prune': ['admin'],
  'keys.rotate': ['admin'],
} as const satisfies Record<string, readonly Role[]>;
export type Permission = keyof typeof PERMISSIONS;

/**
 * Who may do what. From HL7E_ROLES_FILE:
 *
 *     operators:
 *       alice: [oncall]
 *       bob: [auditor, analyst]
 *     default: [analyst]      # everyone else (optional; no roles when absent)
 *
 * Without the file every operator is admin — a fresh install must be operable — and the daemon says so
 * at start. Identity is what the CLI reports (HL7E_OPERATOR or the OS user) from a process that could read
 * the admin token (a 0600 file): the token decides whether someone gets in, roles what they may do.
 */
export class RoleMap {
  readonly configured: boolean;
  readonly #operators: ReadonlyMap<string, readonly Role[]>;
  readonly #default: readonly Role[];

  private constructor(configured: boolean, operators: Map<string, Role[]>, fallback: Role[]) {
    this.configured = configured;
    this.#operators = operators;
    this.#default = fallback;
  }

  static open(): RoleMap {
    return new RoleMap(false, new Map(), ['admin']);
  }

  static load(file: string): RoleMap {
    if (!existsSync(file)) return RoleMap.open();
    const read = readYamlFile(file);
    if ('problems' in read) {
      throw new EngineError('CONFIG_INVALID', { detail: read.problems.map(formatProblem).join('; ') });
    }
    const doc = (read.yaml.value ?? {}) as { operators?: Record<string, unknown>; default?: unknown };
    const roles = (v: unknown, where: string): Role[] => {
      if (!Array.isArray(v) || !v.every((r) => (ROLES as readonly string[]).includes(r as string))) {
        throw new EngineError('CONFIG_INVALID', {
          detail: `${file}: ${where} must be a list of roles (${ROLES.join(', ')})`,
        });
      }
      return v as Role[];
    };
    const ops = new Map<string, Role[]>();
    for (const [name, v] of Object.entries(doc.operators ?? {})) ops.set(name, roles(v, `operators.${name}`));
    return new RoleMap(true, ops, doc.default === undefined ? [] : roles(doc.default, 'default'));
  }

  rolesOf(operator: string): readonly Role[] {
    return this.#operators.get(operator) ?? this.#default;
  }

  allows(operator: string, permission: Permission): boolean {
    const needed: readonly Role[] = PERMISSIONS[permission];
    return this.rolesOf(operator).some((r) => needed.includes(r));
  }
}
