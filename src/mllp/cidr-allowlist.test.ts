import { describe, expect, it } from 'vitest';
import { isEngineError } from '../errors.js';
import { CidrAllowlist } from './cidr-allowlist.js';

describe('CidrAllowlist', () => {
  const list = new CidrAllowlist(['10.0.0.0/8', '192.0.2.7', 'fd00::/8', '::1']);

  it.each([
    ['10.1.2.3', true],
    ['11.0.0.1', false],
    ['192.0.2.7', true],
    ['192.0.2.8', false],
    ['fd12:3456::1', true],
    ['fe80::1', false],
    ['::1', true],
    ['0:0:0:0:0:0:0:1', true],
    ['::ffff:10.9.8.7', true],
    ['::ffff:11.9.8.7', false],
    ['fd00::1%eth0', true],
    ['', false],
    [undefined, false],
    ['not-an-ip', false],
  ])('%s → %s', (address, allowed) => {
    expect(list.allows(address)).toBe(allowed);
  });

  it('matches an IPv4 peer against an IPv4-mapped IPv6 rule', () => {
    expect(new CidrAllowlist(['::ffff:10.0.0.0/104']).allows('10.1.1.1')).toBe(true);
  });

  it('allows nobody when the list is empty', () => {
    expect(new CidrAllowlist([]).allows('127.0.0.1')).toBe(false);
  });

  it.each([
    '10.0.0.0/33',
    '10.0.0/8',
    'fd00::/129',
    'host.example',
    '10.0.0.0/8/1',
    '10.0.0.0/-1',
    '10.0.0.0/',
  ])('rejects %s as configuration, naming only its position', (entry) => {
    let error: unknown;
    try {
      new CidrAllowlist(['127.0.0.1', entry]);
    } catch (err) {
      error = err;
    }
    expect(isEngineError(error, 'CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toContain('allowFrom[1]');
  });
});
