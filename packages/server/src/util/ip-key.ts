import { isIP } from 'node:net';

/** Expands an IPv6 address into its eight 16-bit groups (undefined if it is not one). */
function groups6(address: string): number[] | undefined {
  let a = address;
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  if (isIP(a) !== 6) return undefined;
  // A trailing dotted IPv4 part (::ffff:1.2.3.4, ::1.2.3.4) becomes two groups.
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(a);
  if (v4) {
    const [b0, b1, b2, b3] = v4.slice(1).map(Number) as [number, number, number, number];
    a = a.slice(0, v4.index) + ((b0 << 8) | b1).toString(16) + ':' + ((b2 << 8) | b3).toString(16);
  }
  const [head, tail] = a.includes('::') ? a.split('::') : [a, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g, 16));
}

/**
 * The key every per-address limit counts under: an IPv4 address as it is (an IPv4-mapped IPv6
 * address, `::ffff:1.2.3.4`, is the IPv4 address `1.2.3.4`), an IPv6 address reduced to its first
 * `ipv6Prefix` bits (default /64, what one subscriber or host usually gets), written `2001:db8:0:1::/64`.
 * Anything else (an empty or unknown address) is returned lower-cased.
 */
export function ipKey(address: string, ipv6Prefix = 64): string {
  if (isIP(address) === 4) return address;
  const g = groups6(address);
  if (!g) return address.toLowerCase();
  if (g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff)
    return `${g[6]! >> 8}.${g[6]! & 0xff}.${g[7]! >> 8}.${g[7]! & 0xff}`;
  const prefix = Math.max(0, Math.min(128, ipv6Prefix));
  const kept: string[] = [];
  for (let i = 0; i < 8 && i * 16 < prefix; i++) {
    const bits = Math.min(16, prefix - i * 16);
    kept.push((g[i]! & (0xffff << (16 - bits)) & 0xffff).toString(16));
  }
  if (prefix === 128) return kept.join(':');
  return `${kept.join(':')}::/${prefix}`;
}
