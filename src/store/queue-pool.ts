import pg from 'pg';

/**
 * The connection pool BullMQ's PostgreSQL queue backend runs on (HL7E_QUEUE=postgres). Built here
 * because store/ is the one owner of the pg driver; pipeline/ hands it to BullMQ unopened.
 */
export function createQueuePool(connectionString: string, max: number, schema: string): pg.Pool {
  // BullMQ's SQL names its tables unqualified: a pool handed to it must carry the schema's search_path.
  const pool = new pg.Pool({
    connectionString,
    max,
    application_name: 'hl7-engine-queue',
    options: `-c search_path=${schema}`,
  });
  // Every queue and worker adds its own listener.
  pool.setMaxListeners(0);
  // Idle clients report a lost server here; BullMQ's own calls see the failure and retry.
  pool.on('error', () => {});
  return pool;
}

export type QueuePool = ReturnType<typeof createQueuePool>;
