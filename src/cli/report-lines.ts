import type { FhirIssue } from '../fhir/fhir-validator.js';
import type { MappingReport } from '../mapping/mapping-run.js';

/** The not-mapped report as readable lines: positions, data types and table names only, never values. */
export function mappingReportLines(report: MappingReport): string[] {
  return [
    ...report.unmappedSegments.map((s) => `not mapped: ${s}`),
    ...report.unmappedFields.map((f) => `not mapped: ${f}`),
    ...report.invalid.map((i) => `invalid: ${i.location} (${i.dataType})`),
    ...report.unknownCodes.map((u) => `unknown code: ${u.location} in ${u.table}`),
  ];
}

export function mappingReportSummary(report: MappingReport): string {
  const { unmappedSegments: s, unmappedFields: f, invalid: i, unknownCodes: u } = report;
  return `${s.length} segment(s) and ${f.length} field(s) not mapped, ${i.length} invalid value(s), ${u.length} unknown code(s)`;
}

/** `FHIR_INVALID: Bundle.entry[0].resource.gender (invalid code)`; warnings as `FHIR_WARNING: …`. */
export function fhirIssueLine(issue: FhirIssue): string {
  const code = issue.severity === 'error' ? 'FHIR_INVALID' : 'FHIR_WARNING';
  const what = issue.constraint ? `${issue.category} ${issue.constraint}` : issue.category;
  return `${code}: ${issue.path} (${what})`;
}
