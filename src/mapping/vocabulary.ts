/** One row of a vocabulary table: a v2 code and the FHIR code it maps to. */
export interface VocabularyEntry {
  readonly code: string;
  readonly system?: string;
  readonly display?: string;
}

/** The loaded `vocabulary/*.csv` tables (filled in by vocabulary-loader.ts). */
export interface Vocabularies {
  has(table: string): boolean;
  /** The entry for a v2 code: exact match first, then case-insensitive; undefined when the table lacks it. */
  lookup(table: string, v2Code: string): VocabularyEntry | undefined;
  /** The table's file content hash, for the mapping version. */
  hashOf(table: string): string | undefined;
}
