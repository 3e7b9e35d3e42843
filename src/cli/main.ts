#!/usr/bin/env node
import { describeFailure } from './cli-error.js';
import { buildProgram } from './program.js';

try {
  await buildProgram().parseAsync(process.argv);
} catch (err) {
  const { line, exitCode } = describeFailure(err);
  process.stderr.write(`hl7e: ${line}\n`);
  process.exitCode = exitCode;
}
