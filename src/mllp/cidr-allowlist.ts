import { BlockList, isIP } from 'node:net';
import { EngineError } from '../errors.js';

/**
 * The peers a listener serves, as IPv4/IPv6 CIDRs or single addresses (`10.0.0.0/8`, `fd00::/8`,
 * `192.0.2.7`). Built on node:net's BlockList, which also matches an IPv4-mapped IPv6 peer
 * (`::ffff:10.1.2.3`, as a dual-stack server reports IPv4 clients) against IPv4 rules and the reverse.
 */
export class CidrAllowlist {
  readonly #list = new BlockList();

  /** @throws EngineError CONFIG_INVALID naming the position of an entry that is not an address or CIDR. */
  constructor(entries: readonly string[]) {
    entries.forEach((entry, i) => {
      const rule = parseCidr(entry);
      if (!rule)
        throw new EngineError('CONFIG_INVALID', { detail: `allowFrom[${i}] is not an IP address or CIDR` });
      this.#list.addSubnet(rule.network, rule.prefix, rule.family);
    });
  }

  allows(address: string | undefined): boolean {
    if (!address) return false;
    const bare = address.replace(/%.*$/, ''); // an IPv6 zone index (fe80::1%eth0) is not part of the address
    const family = isIP(bare);
    if (family === 0) return false;
    return this.#list.check(bare, family === 4 ? 'ipv4' : 'ipv6');
  }
}

interface CidrRule {
  network: string;
  prefix: number;
  family: 'ipv4' | 'ipv6';
}

function parseCidr(entry: string): CidrRule | undefined {
  const [network = '', prefixText, extra] = entry.trim().split('/');
  if (extra !== undefined) return undefined;
  const version = isIP(network);
  if (version === 0) return undefined;
  const bits = version === 4 ? 32 : 128;
  if (prefixText === undefined) return { network, prefix: bits, family: version === 4 ? 'ipv4' : 'ipv6' };
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  if (prefix > bits) return undefined;
  return { network, prefix, family: version === 4 ? 'ipv4' : 'ipv6' };
}
