/**
 * The limits of a de-identified export (`POST /messages/export`), in a module of their own so that the
 * CLI can show and check them without loading the export route (the CLI loads actions only when run).
 */

/** Messages in one export when the caller gives no limit, and at most. */
export const EXPORT_DEFAULT_LIMIT = 1_000;
export const EXPORT_MAX_LIMIT = 10_000;
