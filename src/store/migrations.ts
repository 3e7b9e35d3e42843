import { EngineError, isEngineError } from '../errors.js';
import type { Db } from './db.js';

/**
 * The schema, as an ordered list of forward-only migrations. A released migration is never edited:
 * a change is a new entry. Columns hold ids, codes, times and digests — never message content
 * (DESIGN rule 3); the message itself lives encrypted in the archive, which `archive_*` points into.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'messages, deliveries, data keys, audit',
    sql: `
CREATE TABLE data_keys (
  id            text PRIMARY KEY,
  provider      text NOT NULL,
  master_key_id text NOT NULL,
  wrapped_key   bytea NOT NULL,
  created_at    timestamptz NOT NULL DEFAULT now(),
  retired_at    timestamptz,
  rewrapped_at  timestamptz
);

CREATE TABLE messages (
  id              uuid PRIMARY KEY,
  seq             bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
  channel         text NOT NULL,
  sender          text NOT NULL,
  control_id      text NOT NULL,
  message_type    text NOT NULL,
  version         text NOT NULL,
  received_at     timestamptz NOT NULL,
  connection_id   text,
  status          text NOT NULL CHECK (status IN ('received', 'processed', 'delivered', 'failed', 'rejected')),
  ack_code        text NOT NULL,
  error_code      text,
  partition       smallint NOT NULL,
  collision_of    uuid REFERENCES messages (id),
  duplicate_count integer NOT NULL DEFAULT 0,
  last_duplicate_at timestamptz,
  content_sha256  bytea NOT NULL,
  byte_length     integer NOT NULL,
  data_key_id     text NOT NULL REFERENCES data_keys (id),
  archive_file    text NOT NULL,
  archive_offset  bigint NOT NULL,
  archive_length  integer NOT NULL,
  processed_at    timestamptz,
  updated_at      timestamptz NOT NULL DEFAULT now(),
  last_error_code text,
  last_error_at   timestamptz
);
CREATE INDEX messages_duplicate_lookup ON messages (channel, sender, control_id, received_at DESC);
CREATE INDEX messages_unfinished ON messages (partition, seq) WHERE status = 'received';
-- Every index is paid on each intake INSERT and again on each status change (a status UPDATE is never
-- HOT: status is in the partial index's predicate), so only the hot paths' lookups have one here.

CREATE TABLE message_events (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  message_id uuid NOT NULL REFERENCES messages (id),
  at         timestamptz NOT NULL DEFAULT now(),
  event      text NOT NULL,
  detail     jsonb
);
CREATE INDEX message_events_message ON message_events (message_id, id);

CREATE TABLE deliveries (
  id               uuid PRIMARY KEY,
  message_id       uuid NOT NULL REFERENCES messages (id),
  destination      text NOT NULL,
  status           text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed', 'held')),
  attempts         integer NOT NULL DEFAULT 0,
  created_at       timestamptz NOT NULL DEFAULT now(),
  last_attempt_at  timestamptz,
  delivered_at     timestamptz,
  last_error_class text,
  UNIQUE (message_id, destination)
);
CREATE INDEX deliveries_pending ON deliveries (destination, created_at) WHERE status = 'pending';

CREATE TABLE delivery_attempts (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id  uuid NOT NULL REFERENCES deliveries (id),
  attempt      integer NOT NULL,
  started_at   timestamptz NOT NULL,
  finished_at  timestamptz,
  outcome      text NOT NULL,
  error_class  text,
  status_code  integer
);
CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);

CREATE TABLE audit_events (
  seq       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  actor     text NOT NULL,
  action    text NOT NULL,
  target    text,
  reason    text,
  outcome   text NOT NULL,
  prev_hash bytea,
  hash      bytea NOT NULL
);
`,
  },
  {
    version: 2,
    name: 'delivery: ordering keys, attempts and encrypted answers',
    sql: `
-- channel and seq (the message's) let a delivery find, without a join, the deliveries that must go
-- before it: same channel, destination and ordering key, lower seq. order_key is a keyed hash (HMAC
-- under a secret wrapped by the master key), never the key itself: a patient identifier is PHI.
ALTER TABLE deliveries
  ADD COLUMN channel text,
  ADD COLUMN seq bigint,
  ADD COLUMN order_key bigint,
  ADD COLUMN last_error_at timestamptz,
  ADD COLUMN last_status integer,
  ADD COLUMN next_attempt_at timestamptz;
UPDATE deliveries d SET channel = m.channel, seq = m.seq FROM messages m WHERE m.id = d.message_id;
ALTER TABLE deliveries ALTER COLUMN channel SET NOT NULL, ALTER COLUMN seq SET NOT NULL;
CREATE INDEX deliveries_key_order ON deliveries (channel, destination, order_key, seq)
  WHERE status IN ('pending', 'held') AND order_key IS NOT NULL;
DROP INDEX deliveries_pending;
CREATE INDEX deliveries_pending ON deliveries (channel, destination, seq) WHERE status IN ('pending', 'held');
CREATE INDEX deliveries_failed ON deliveries (channel, destination, last_attempt_at) WHERE status = 'failed';
ALTER TABLE delivery_attempts ADD COLUMN retry_after_ms integer, ADD COLUMN ack_code text;

-- What was sent and what the destination answered, AES-256-GCM under a data key (both may be PHI).
CREATE TABLE delivery_bodies (
  delivery_id uuid NOT NULL REFERENCES deliveries (id),
  attempt     integer NOT NULL,
  kind        text NOT NULL CHECK (kind IN ('request', 'response')),
  data_key_id text NOT NULL REFERENCES data_keys (id),
  iv          bytea NOT NULL,
  tag         bytea NOT NULL,
  ciphertext  bytea NOT NULL,
  PRIMARY KEY (delivery_id, attempt, kind)
);
`,
  },
  {
    version: 3,
    name: 'on-call: time-range lookups, replays',
    sql: `
-- Status ("last hour") and messages list --since/--until read by arrival time. BRIN: rows arrive in time
-- order, so a few pages of summaries serve every range and intake pays almost nothing for it.
CREATE INDEX messages_received_at ON messages USING brin (received_at);
CREATE INDEX messages_failed ON messages (channel, seq) WHERE status IN ('failed', 'rejected');
CREATE INDEX deliveries_message ON deliveries (message_id);

-- A replayed delivery counts its attempts afresh from attempt_base (its attempts so far), and says
-- what to send: the Bundle rebuilt from the raw message with today's mappings (raw) or the body the
-- last attempt sent, as it was (mapped).
ALTER TABLE deliveries
  ADD COLUMN attempt_base integer NOT NULL DEFAULT 0,
  ADD COLUMN replay_from text CHECK (replay_from IN ('raw', 'mapped')),
  ADD COLUMN replayed_at timestamptz;
`,
  },
  {
    version: 4,
    name: 'archive prune: messages whose raw record was pruned',
    sql: `
-- Set when \`hl7e archive prune\` removed the archive file holding the message's raw record: the row
-- (ids, states, attempts) stays; reading its content answers "pruned" instead of failing.
ALTER TABLE messages ADD COLUMN archive_pruned_at timestamptz;
`,
  },
  {
    version: 5,
    name: 'retention: body ages, shredded data keys, prune runs',
    sql: `
-- Crypto-shredding: a data key whose every record is past retention has its wrapped bytes erased; the
-- row stays so a record under it reads "destroyed", not "unknown".
ALTER TABLE data_keys ADD COLUMN destroyed_at timestamptz;

-- The mapped-output retention counts from when a body was stored. Existing bodies take their attempt's
-- start; new ones the insert's time. The index serves the prune and the shred's "any body left under
-- this key" check (a btree: rows deleted by retention leave holes that new rows fill, which would blur
-- a BRIN's ranges).
ALTER TABLE delivery_bodies ADD COLUMN created_at timestamptz;
UPDATE delivery_bodies b SET created_at = a.started_at
  FROM delivery_attempts a WHERE a.delivery_id = b.delivery_id AND a.attempt = b.attempt;
UPDATE delivery_bodies SET created_at = now() WHERE created_at IS NULL;
ALTER TABLE delivery_bodies ALTER COLUMN created_at SET DEFAULT now(), ALTER COLUMN created_at SET NOT NULL;
CREATE INDEX delivery_bodies_created_at ON delivery_bodies (created_at);

-- Deleting an expired message must not orphan a later collision that points at it; collisions are
-- rare, so the partial index costs intake nothing for ordinary rows.
CREATE INDEX messages_collision_of ON messages (collision_of) WHERE collision_of IS NOT NULL;

-- The scheduled prune runs once per interval across all engines: the one that claims this row runs it.
CREATE TABLE retention_runs (
  id          smallint PRIMARY KEY CHECK (id = 1),
  started_at  timestamptz NOT NULL,
  finished_at timestamptz,
  holder      text NOT NULL
);
`,
  },
];

/** Applies pending migrations in order, each in its own transaction, under an advisory lock so two
 * engines starting together do not race. Returns the versions applied. */
export async function migrate(db: Db, migrations: readonly Migration[] = MIGRATIONS): Promise<number[]> {
  await db.query(
    `CREATE TABLE IF NOT EXISTS schema_migrations (
       version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
  );
  const applied: number[] = [];
  for (const m of migrations) {
    try {
      const done = await db.transaction(async (tx) => {
        await tx.query('SELECT pg_advisory_xact_lock(727001)');
        const seen = await tx.query('SELECT 1 FROM schema_migrations WHERE version = $1', [m.version]);
        if (seen.rowCount > 0) return false;
        await tx.query(m.sql);
        await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name]);
        return true;
      });
      if (done) applied.push(m.version);
    } catch (err) {
      const sqlstate = isEngineError(err) ? (err.details.sqlstate ?? err.code) : 'unknown';
      throw new EngineError('STORE_MIGRATION_FAILED', { version: m.version, sqlstate }, undefined, {
        cause: err,
      });
    }
  }
  return applied;
}
