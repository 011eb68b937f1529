import * as net from 'node:net';

/**
 * Who may see and log in to a target: initiator names (exact, or a prefix ending in "*") and
 * source networks (CIDR, IPv4 or IPv6). Empty lists allow everyone.
 */
export class InitiatorAcl {
  private readonly blocks = new net.BlockList();
  private readonly hasNetworks: boolean;

  constructor(
    private readonly initiators: readonly string[],
    networks: readonly string[],
  ) {
    for (const cidr of networks) {
      const [addr, bits] = cidr.split('/');
      const type = net.isIPv6(addr) ? 'ipv6' : 'ipv4';
      this.blocks.addSubnet(addr, Number(bits ?? (type === 'ipv6' ? 128 : 32)), type);
    }
    this.hasNetworks = networks.length > 0;
  }

  allows(initiatorName: string, address: string): boolean {
    const nameOk =
      this.initiators.length === 0 || this.initiators.some((p) => (p.endsWith('*') ? initiatorName.startsWith(p.slice(0, -1)) : p === initiatorName));
    if (!nameOk) return false;
    if (!this.hasNetworks) return true;
    const a = address.replace(/^::ffff:/, '');
    return this.blocks.check(a, net.isIPv6(a) ? 'ipv6' : 'ipv4');
  }
}

/** Validates a CIDR string ("10.0.0.0/8", "fd00::/8", or a bare address). */
export function validCidr(cidr: string): boolean {
  const [addr, bits, extra] = cidr.split('/');
  if (extra !== undefined || !net.isIP(addr)) return false;
  if (bits === undefined) return true;
  const n = Number(bits);
  return /^[0-9]{1,3}$/.test(bits) && n <= (net.isIPv6(addr) ? 128 : 32);
}
