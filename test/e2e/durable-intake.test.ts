import { durableIntakeSuite } from './durable-intake.suite.js';

durableIntakeSuite('redis');
