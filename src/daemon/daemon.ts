import { mkdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createAdminApi } from '../admin/admin-api.js';
import { ADMIN_FILE, newAdminToken, removeAdminFile, writeAdminFile } from '../admin/admin-file.js';
import { RoleMap } from '../admin/roles.js';
import type { EngineState } from '../admin/status-report.js';
import { KeyRing } from '../archive/keyring.js';
import { RawArchive } from '../archive/raw-archive.js';
import type { ChannelConfig } from '../channels/channel-config.js';
import { parseDuration } from '../channels/channel-config.js';
import { formatProblem, loadChannelDir } from '../channels/channel-loader.js';
import type { EngineEnv } from '../config/env.js';
import { loadRetentionPolicy, retentionSummary } from '../config/retention-config.js';
import { formatProblem as formatFileProblem } from '../config/yaml-file.js';
import { Destination } from '../delivery/destination.js';
import { EngineError } from '../errors.js';
import { MappingCatalog } from '../mapping/mapping-catalog.js';
import { MllpListener, type MllpListenerOptions } from '../mllp/index.js';
import { AuditLog } from '../observability/audit-log.js';
import type { Logger } from '../observability/logger.js';
import { EngineMetrics } from '../observability/metrics.js';
import { ConversionPool } from '../pipeline/conversion-pool.js';
import { DeliveryStep } from '../pipeline/delivery-step.js';
import { GroupCommit } from '../pipeline/group-commit.js';
import { createIntake, oversizeNak } from '../pipeline/intake.js';
import { MappingGaps } from '../pipeline/mapping-gaps.js';
import { InlineConverter } from '../pipeline/message-converter.js';
import type { MessageSink } from '../pipeline/message-sink.js';
import { Processor } from '../pipeline/processor.js';
import { RawHandoff } from '../pipeline/raw-handoff.js';
import { Reconciler } from '../pipeline/reconciler.js';
import { retentionLogFields } from '../pipeline/retention.js';
import { RetentionSchedule } from '../pipeline/retention-schedule.js';
import { type DeliveryQueueSpec, destinationKey, WorkQueues } from '../pipeline/work-queues.js';
import { AuditRepo } from '../store/audit-repo.js';
import { DataKeyRepo } from '../store/data-key-repo.js';
import { DeliveryRepo } from '../store/delivery-repo.js';
import { MessageRepo } from '../store/message-repo.js';
import { openStore } from '../store/open-store.js';
import { ReplayRepo } from '../store/replay-repo.js';
import { RetentionRepo } from '../store/retention-repo.js';
import { openKeyProvider } from './key-provider-factory.js';

export interface DaemonOptions {
  env: EngineEnv;
  logger: Logger;
  /** Channels to run instead of those in env.channelsDir (tests). */
  channels?: ChannelConfig[];
}

export interface ChannelAddress {
  channel: string;
  host: string;
  port: number;
}

/** Raw bytes kept for this process's own processing step (see RawHandoff): ~50k typical messages. */
const HANDOFF_BYTES = 64 << 20;
/** The keyring's id of the ordering-key HMAC secret (pipeline/ordering.ts deliveryOrderKey). */
const ORDER_SECRET_ID = 'ks_delivery_order_v1';
/** How long an MLLP destination may take to connect, on top of its ACK timeout (MllpSender's default). */
const MLLP_CONNECT_MS = 10_000;

/**
 * Wiring only (DESIGN: daemon/ holds no domain logic): builds store, key provider, archive, queues,
 * workers, reconciler and one MLLP listener per enabled channel, and owns start and stop order.
 * Start: queue backend reachable → store migrated → keys → archive → workers → reconciler's start-up
 * pass → listeners (so nothing is ACKed before it can be stored). Stop: the reverse — listeners stop
 * taking frames and answer those in hand, the group commit drains, workers finish their job.
 */
export class Daemon {
  readonly #opts: DaemonOptions;
  readonly #listeners = new Map<string, MllpListener>();
  #addresses: ChannelAddress[] = [];
  #state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';
  /** Teardown steps in the order they must run (reverse of construction). */
  #teardown: { name: string; run: () => Promise<unknown> }[] = [];
  #commit: GroupCommit | undefined;
  /** Closes the admin API and removes its admin.json. */
  #admin: (() => Promise<void>) | undefined;

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
  }

  get addresses(): readonly ChannelAddress[] {
    return this.#addresses;
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') return;
    this.#state = 'starting';
    const { logger, env } = this.#opts;
    try {
      const channels = (this.#opts.channels ?? this.#loadChannels()).filter((c) => c.enabled);
      const byName = new Map(channels.map((c) => [c.name, c]));
      const catalog = this.#loadMappings(channels);
      const retention = loadRetentionPolicy(process.env, { dataKeyMaxAgeMs: env.dataKeyMaxAgeMs });
      const gaps = new MappingGaps();
      // Sources are read at scrape time, by then everything they name exists.
      const metrics = new EngineMetrics({
        queueDepth: async () => {
          const out = [];
          const p = await queues.processDepth();
          for (const [state, jobs] of Object.entries(p)) out.push({ queue: 'process', state, jobs });
          for (const [key, d] of await queues.deliveryDepth()) {
            for (const [state, jobs] of Object.entries(d)) out.push({ queue: `deliver:${key}`, state, jobs });
          }
          return out;
        },
        breakers: () =>
          [...destinations.values()].map((d) => {
            const s = d.snapshot();
            return { channel: s.channel, destination: s.destination, state: s.breaker };
          }),
      });

      const queues = await WorkQueues.connect({
        backend: env.queue,
        redisUrl: env.redisUrl,
        ...(env.redisSentinels
          ? { redisSentinels: env.redisSentinels, redisSentinelName: env.redisSentinelName }
          : {}),
        ...(env.redisCluster ? { redisCluster: env.redisCluster } : {}),
        prefix: env.queuePrefix,
        partitions: env.partitions,
        processGatherMs: env.processGatherMs,
        destinations: deliveryQueues(channels),
        ...(env.databaseUrl ? { databaseUrl: env.databaseUrl } : {}),
      });
      this.#onStop('queues', () => queues.close());

      const store = await openStore({
        databaseUrl: env.databaseUrl,
        dataDir: env.dataDir,
        onError: (err) => logger.warn({ err }, 'store connection lost'),
      });
      this.#onStop('store', () => store.close());
      logger.info(
        { store: store.db.kind, migrated: store.migrated, queue: env.queue, partitions: env.partitions },
        'store ready',
      );

      const provider = await openKeyProvider(env, logger);
      this.#onStop('key provider', () => provider.close());
      const keyring = new KeyRing({
        provider,
        repo: new DataKeyRepo(store.db),
        maxAgeMs: env.dataKeyMaxAgeMs,
        maxRecords: env.dataKeyMaxRecords,
        cacheMs: env.dataKeyCacheMs,
      });
      this.#onStop('keyring', () => keyring.close());
      const archive = new RawArchive(env.archiveDir, keyring);
      this.#onStop('archive', () => archive.close());
      const orderSecret = await keyring.namedSecret(ORDER_SECRET_ID);

      // Intake commits on the main pool; processing and the reconciler on the work pool.
      const messages = new MessageRepo(store.db);
      const workMessages = new MessageRepo(store.workDb);
      const workDeliveries = new DeliveryRepo(store.workDb);
      const handoff = new RawHandoff(HANDOFF_BYTES);
      // Parsing and mapping run beside the event loop that answers MLLP (conversion-pool.ts says why).
      const converter =
        env.convertWorkers > 0
          ? new ConversionPool({
              size: env.convertWorkers,
              mappingsDir: env.mappingsDir,
              channels,
              orderSecret,
              onWorkerError: (err) => logger.warn({ err }, 'conversion worker failed; it is replaced'),
            })
          : new InlineConverter(byName, catalog, orderSecret);
      if (converter instanceof ConversionPool) await converter.start();
      this.#onStop('converter', () => converter.close());
      const processor = new Processor({
        handoff,
        db: store.workDb,
        messages: workMessages,
        deliveries: workDeliveries,
        archive,
        channels: byName,
        converter,
        enqueueDeliveries: async (refs) => {
          await queues.enqueueDelivery(refs);
        },
        onProcessed: (m, outcome, code, conversion) => {
          metrics.processed.inc({ channel: m.channel, outcome });
          if (outcome === 'failed')
            logger.warn({ messageId: m.id, channel: m.channel, code }, 'processing failed');
          if (conversion) gaps.record(m.channel, conversion.unmapped);
        },
      });
      queues.runProcessWorkers(
        async (partition, messageId) => {
          await processor.processPartition(partition, messageId);
        },
        (err, partition) => logger.warn({ err, partition }, 'processing job failed; it will be retried'),
      );

      const destinations = new Map<string, Destination>();
      for (const c of channels) {
        for (const d of c.destinations) {
          const dest = new Destination(c, d, {
            onBreakerChange: (channel, destination, state) => {
              const log = { channel, destination, breaker: state };
              if (state === 'open')
                logger.warn({ ...log, openMs: d.circuitBreaker.openMs }, 'circuit breaker opened');
              else if (state === 'closed') logger.info(log, 'circuit breaker closed');
              else logger.debug(log, 'circuit breaker half-open: probing');
            },
          });
          destinations.set(destinationKey({ channel: c.name, destination: d.name }), dest);
        }
      }
      this.#onStop('destinations', () =>
        Promise.allSettled([...destinations.values()].map((d) => d.close())),
      );
      const replays = new ReplayRepo(store.deliveryDb);
      // The delivery pool also serves status (reconciler lines, hl7e status): processing may fill the
      // work pool for seconds under load, and a status query must not wait behind it (bench:deliver saw
      // it time out there).
      const deliveryRepo = new DeliveryRepo(store.deliveryDb);
      const delivery = new DeliveryStep({
        deliveries: deliveryRepo,
        replays,
        archive,
        keys: keyring,
        converter,
        destinations,
        wake: (ref) => queues.wakeDelivery(ref),
        onAttempt: (a) => {
          // Ids and codes only. A retry is routine while a destination recovers: debug; an ending that
          // is not a success needs a person: warn.
          const { receivedAt, ...line } = a;
          metrics.deliveryAttempts.inc({
            channel: a.channel,
            destination: a.destination,
            outcome: a.outcome,
          });
          if (a.outcome === 'delivered') {
            const seconds = (Date.now() - receivedAt.getTime()) / 1000;
            metrics.endToEnd.observe({ channel: a.channel, destination: a.destination }, seconds);
          }
          if (a.outcome === 'delivered' || a.outcome === 'retry') logger.debug(line, `delivery ${a.outcome}`);
          else logger.warn(line, `delivery ${a.outcome}`);
        },
      });
      queues.runDeliveryWorkers(
        (job) => delivery.run(job),
        (err, destination) => logger.warn({ err, destination }, 'delivery job failed; it will be retried'),
      );
      // Registered after everything the workers use, so a stop lets running jobs finish before those close.
      this.#onStop('workers', () => queues.closeWorkers());

      const reconciler = new Reconciler({
        messages: workMessages,
        deliveries: workDeliveries,
        queues,
        intervalMs: env.reconcileIntervalMs,
        // Drains look above a per-partition floor; a pass makes them look at everything once.
        beforePass: () => processor.rescan(),
        onPass: (stats) => {
          // Messages found unfinished past the grace period mean lost jobs (a Redis restart): worth a
          // line. Pending deliveries are normal until a delivery worker takes them: debug only.
          if (stats.messages > 0) logger.info(stats, 'reconciler re-enqueued unfinished messages');
          else if (stats.deliveries > 0) logger.debug(stats, 'reconciler re-enqueued pending deliveries');
          // Positions that carried data no mapping rule read, counted per channel since start.
          if (gaps.takeChanged()) logger.info({ notMapped: gaps.snapshot() }, 'fields not mapped');
          this.#reportDestinations(deliveryRepo, destinations).catch((err: unknown) =>
            logger.warn({ err }, 'destination status query failed'),
          );
        },
        onError: (err) => logger.warn({ err }, 'reconciler pass failed'),
      });
      this.#onStop('reconciler', () => reconciler.stop());

      const windows = new Map(
        channels.map((c) => [
          c.name,
          { windowMs: parseDuration(c.duplicates.window), onCollision: c.duplicates.onCollision },
        ]),
      );
      const commit = new GroupCommit({
        repo: messages,
        archive,
        duplicatePolicy: (name) => windows.get(name) ?? { windowMs: 0, onCollision: 'process' },
        maxBatch: env.intakeMaxBatch,
        highWater: env.intakeHighWater,
        maxPending: env.intakeMaxPending,
        commitTimeoutMs: env.intakeCommitTimeoutMs,
        onCommitted: (committed) => {
          metrics.archiveRecords.inc(committed.length);
          for (const c of committed) handoff.put(c.id, c.raw);
          queues.wakeProcessing(committed).catch((err: unknown) => {
            // Stored and ACKed: the reconciler enqueues them once the queue is back.
            logger.warn({ err, messages: committed.length }, 'enqueue failed; reconciler will retry');
          });
        },
        onPressure: (high) => {
          for (const l of this.#listeners.values()) l.hold(high);
          logger.warn(
            { backlog: this.#commit?.backlog },
            high ? 'intake backpressure on' : 'intake backpressure off',
          );
        },
        onFailure: (err, size) =>
          logger.error({ err, messages: size }, 'group commit failed; senders get AE/CE'),
      });
      this.#commit = commit;
      this.#onStop('intake', () => commit.close());
      await reconciler.start();

      logger.info(
        {
          retention: retentionSummary(retention),
          schedule: retention.schedule,
          file: retention.file ?? null,
        },
        'retention policy',
      );
      for (const w of retention.warnings) logger.warn({ file: retention.file ?? null }, w);
      // One audit trail: its appends serialise on a chain lock, whoever writes them.
      const audit = new AuditLog(new AuditRepo(store.db));
      const prune = new RetentionSchedule({
        deps: {
          db: store.workDb,
          archiveDir: env.archiveDir,
          audit,
          keys: keyring,
        },
        repo: new RetentionRepo(store.db),
        policy: retention,
        holder: `${hostname()}:${process.pid}`,
        onRun: (report, ms) =>
          report.failed.length > 0
            ? logger.warn({ ...retentionLogFields(report), ms }, 'retention prune failed in part')
            : logger.info({ ...retentionLogFields(report), ms }, 'retention prune'),
        onSkip: (reason) => logger.debug({ reason }, 'retention prune not due here'),
        onError: (err) => logger.warn({ err }, 'retention prune failed'),
      });
      if (retention.schedule) prune.start();
      this.#onStop('retention', () => prune.stop());

      const roles = RoleMap.load(env.rolesFile);
      if (!roles.configured) {
        logger.warn(
          { rolesFile: env.rolesFile },
          'no roles file: every operator is admin; list operators and their roles there',
        );
      }
      const state: EngineState = {
        listeners: () =>
          channels.map((c) => {
            const l = this.#listeners.get(c.name);
            const addr = l?.address();
            return {
              channel: c.name,
              host: addr?.host ?? c.source.mllp.host,
              port: addr?.port ?? c.source.mllp.port,
              up: addr !== undefined,
              connections: l?.connectionCount ?? 0,
              held: l?.held ?? false,
            };
          }),
        destinations: () => [...destinations.values()].map((d) => d.snapshot()),
        processDepth: () => queues.processDepth(),
        deliveryDepth: () => queues.deliveryDepth(),
      };
      const token = newAdminToken();
      const admin = createAdminApi(
        {
          state,
          db: store.workDb,
          messages: workMessages,
          deliveries: deliveryRepo,
          audit,
          keys: keyring,
          archive,
          converter,
          channels: byName,
          enqueueDeliveries: (refs) => queues.enqueueDelivery(refs),
          enqueueProcessing: (items) => queues.enqueueProcess(items),
          rotateMasterKey: () => provider.rotateMasterKey(),
          roles,
          metrics,
          logger,
        },
        { host: env.adminHost, port: env.adminPort, token, roles },
      );
      const { url } = await admin.listen();
      this.#admin = async () => {
        removeAdminFile(env.dataDir, token);
        await admin.close();
      };
      mkdirSync(env.dataDir, { recursive: true });
      writeAdminFile(env.dataDir, { url, token, pid: process.pid, startedAt: new Date().toISOString() });
      logger.info({ url, file: join(env.dataDir, ADMIN_FILE) }, 'admin API listening');

      for (const channel of channels) {
        const listener = new MllpListener(this.#listenerOptions(channel, commit, metrics));
        this.#listeners.set(channel.name, listener);
        const { host, port } = await listener.listen();
        this.#addresses.push({ channel: channel.name, host, port });
        logger.info(
          { channel: channel.name, host, port, tls: Boolean(channel.source.mllp.tls) },
          'listening',
        );
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.#state = 'running';
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#state = 'stopping';
    const { logger } = this.#opts;
    // First: no operator acts on an engine that is going away, and the CLI stops finding it.
    await this.#admin?.().catch((err: unknown) => logger.error({ err }, 'admin API failed to close'));
    const results = await Promise.allSettled(
      [...this.#listeners].map(async ([name, l]) => {
        await l.close();
        logger.info({ channel: name }, 'listener closed');
      }),
    );
    for (const r of results) {
      if (r.status === 'rejected') logger.error({ err: r.reason }, 'listener failed to close');
    }
    this.#listeners.clear();
    for (const step of this.#teardown.reverse()) {
      try {
        await step.run();
      } catch (err) {
        logger.error({ err, step: step.name }, 'stop step failed');
      }
    }
    this.#teardown = [];
    this.#state = 'stopped';
  }

  /** Destination → its last reported trouble, so a line is written when it changes, not every pass. */
  readonly #reported = new Map<string, string>();

  /**
   * One line per destination whose trouble changed since the last pass: breaker, backlog, what retries,
   * is held or held back behind a retrying key, dead letters — counts and codes only.
   */
  async #reportDestinations(
    repo: DeliveryRepo,
    destinations: ReadonlyMap<string, Destination>,
  ): Promise<void> {
    const stats = new Map((await repo.destinationStats()).map((s) => [destinationKey(s), s]));
    for (const [key, dest] of destinations) {
      const snap = dest.snapshot();
      const st = stats.get(key);
      const line = {
        channel: snap.channel,
        destination: snap.destination,
        breaker: snap.breaker,
        pending: st?.pending ?? 0,
        retrying: st?.retrying ?? 0,
        heldBack: st?.heldBack ?? 0,
        held: st?.held ?? 0,
        failed: st?.failed ?? 0,
        oldestPendingS: st?.oldestPendingAt
          ? Math.round((Date.now() - st.oldestPendingAt.getTime()) / 1000)
          : 0,
        lastErrorClass: st?.lastErrorClass ?? snap.lastErrorClass,
      };
      const trouble =
        line.breaker !== 'closed' || line.retrying + line.held + line.heldBack + line.failed > 0;
      const sig = trouble
        ? JSON.stringify([line.breaker, line.retrying > 0, line.held, line.heldBack > 0, line.failed])
        : 'ok';
      if ((this.#reported.get(key) ?? 'ok') === sig) continue;
      this.#reported.set(key, sig);
      if (trouble) this.#opts.logger.warn(line, 'destination needs attention');
      else this.#opts.logger.info(line, 'destination healthy again');
    }
  }

  #onStop(name: string, run: () => Promise<unknown>): void {
    this.#teardown.push({ name, run });
  }

  /** The mappings, checked whole at start: a channel must not find a broken map with its first message. */
  #loadMappings(channels: readonly ChannelConfig[]): MappingCatalog {
    const catalog = MappingCatalog.forSite(this.#opts.env.mappingsDir);
    const problems = catalog.checkAll().map(formatFileProblem);
    for (const c of channels) {
      if (c.mapping !== undefined && !catalog.messageMapNames().includes(c.mapping))
        problems.push(`${c.file}: mapping: mapping ${c.mapping} is not defined`);
    }
    if (problems.length > 0) throw new EngineError('CONFIG_INVALID', { detail: problems.join('; ') });
    return catalog;
  }

  #loadChannels(): ChannelConfig[] {
    const { channels, problems, warnings } = loadChannelDir(this.#opts.env.channelsDir);
    if (problems.length > 0) {
      throw new EngineError('CONFIG_INVALID', { detail: problems.map(formatProblem).join('; ') });
    }
    // Where and what kind, never the value.
    for (const w of warnings) this.#opts.logger.warn({ file: w.file, line: w.line, key: w.key }, w.message);
    return channels;
  }

  #listenerOptions(channel: ChannelConfig, sink: MessageSink, metrics: EngineMetrics): MllpListenerOptions {
    const src = channel.source.mllp;
    const { logger, env } = this.#opts;
    const log = logger.child({ channel: channel.name });
    const intake = createIntake(channel, sink, { partitions: env.partitions });
    const options: MllpListenerOptions = {
      host: src.host,
      port: src.port,
      maxMessageBytes: src.maxMessageBytes,
      idleTimeoutMs: src.idleTimeoutMs,
      handler: async (frame, conn) => {
        const started = performance.now();
        const result = await intake(frame, conn.id);
        metrics.received.inc({ channel: channel.name });
        metrics.acks.inc({ channel: channel.name, outcome: result.outcome });
        metrics.ackLatency.observe({ channel: channel.name }, (performance.now() - started) / 1000);
        if (result.duplicate) metrics.duplicates.inc({ channel: channel.name });
        if (result.outcome !== 'accept')
          log.warn(
            {
              connection: conn.id,
              outcome: result.outcome,
              code: result.code,
              messageId: result.messageId,
              correlationId: result.correlationId,
            },
            'message not accepted',
          );
        else if (result.duplicate || result.collision)
          log.info(
            {
              connection: conn.id,
              messageId: result.messageId,
              duplicate: result.duplicate,
              collision: result.collision,
            },
            result.duplicate
              ? 'duplicate acknowledged with its first outcome'
              : 'control id collision stored',
          );
        return result.ack;
      },
      onHandlerError: (err, _frame, conn) => {
        // intake never throws by design; this is the last line of defence, logged by code only.
        log.error({ connection: conn.id, err }, 'intake failed');
        return undefined;
      },
      onOversize: (head, conn) => {
        log.warn({ connection: conn.id, limit: src.maxMessageBytes }, 'frame over size limit');
        return oversizeNak(head, channel, src.maxMessageBytes);
      },
    };
    if (src.allowFrom) options.allowFrom = [...src.allowFrom];
    if (src.maxConnections) options.maxConnections = src.maxConnections;
    if (src.maxConnectionsPerPeer) options.maxConnectionsPerPeer = src.maxConnectionsPerPeer;
    // Who was turned away and why: address, reason, TLS code, certificate fingerprint and CN; no content.
    options.onEvent = (e) => {
      if (e.type === 'refused' || e.type === 'client-refused') log.warn(e, 'connection refused');
      else if (e.type === 'tls-error') log.warn(e, 'TLS handshake failed');
    };
    if (src.tls) {
      // Paths are relative to the channel file, so a channel folder can be moved as a whole.
      const base = dirname(channel.file);
      const read = (p: string) => readFileSync(resolve(base, p));
      options.tls = {
        cert: read(src.tls.cert),
        key: read(src.tls.key),
        ...(src.tls.ca ? { ca: read(src.tls.ca) } : {}),
        requestCert: src.tls.requireClientCert,
        ...(src.tls.allowClients ? { allowClients: src.tls.allowClients } : {}),
        minVersion: src.tls.minVersion,
      };
    }
    return options;
  }
}

/** One delivery queue per channel destination, with its retry policy and the longest an attempt may take. */
function deliveryQueues(channels: readonly ChannelConfig[]): DeliveryQueueSpec[] {
  return channels.flatMap((c) =>
    c.destinations.map((d) => ({
      channel: c.name,
      destination: d.name,
      retry: d.retry,
      concurrency: d.concurrency,
      maxDurationMs: d.fhir ? d.fhir.timeoutMs : (d.mllp?.ackTimeoutMs ?? 0) + MLLP_CONNECT_MS,
    })),
  );
}
