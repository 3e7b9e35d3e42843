import { durableIntakeSuite } from './durable-intake.suite.js';

// HL7E_QUEUE=postgres (BullMQ's PostgreSQL backend) held to the same crash tests as Redis.
durableIntakeSuite('postgres');
