import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxyV2, PROXY_V2_SIGNATURE, ProxyHeaderError } from './proxy-protocol.js';

function header(verCmd: number, famProto: number, body: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(body.length);
  return Buffer.concat([PROXY_V2_SIGNATURE, Buffer.from([verCmd, famProto]), len, body]);
}

function ipv4Body(src: number[], srcPort: number): Buffer {
  const b = Buffer.alloc(12);
  Buffer.from(src).copy(b, 0);
  Buffer.from([127, 0, 0, 1]).copy(b, 4);
  b.writeUInt16BE(srcPort, 8);
  b.writeUInt16BE(5222, 10);
  return b;
}

describe('PROXY protocol v2', () => {
  test('TCP over IPv4: source address and port; trailing bytes are not part of the header', () => {
    const h = header(0x21, 0x11, ipv4Body([203, 0, 113, 9], 40000));
    const parsed = parseProxyV2(Buffer.concat([h, Buffer.from('<?xml')]));
    assert.deepEqual(parsed, { command: 'proxy', address: '203.0.113.9', port: 40000, length: 28 });
  });

  test('TCP over IPv6, with a TLV after the addresses', () => {
    const body = Buffer.alloc(36 + 5);
    Buffer.from('20010db8000000000000000000000001', 'hex').copy(body, 0);
    Buffer.from('00000000000000000000000000000001', 'hex').copy(body, 16);
    body.writeUInt16BE(4711, 32);
    body.writeUInt16BE(5223, 34);
    Buffer.from([0x01, 0x00, 0x02, 0x68, 0x32]).copy(body, 36); // PP2_TYPE_ALPN "h2"
    assert.deepEqual(parseProxyV2(header(0x21, 0x21, body)), {
      command: 'proxy',
      address: '2001:db8::1',
      port: 4711,
      length: 16 + 41,
    });
  });

  test('LOCAL (health check) and UNSPEC keep the connection endpoints', () => {
    assert.deepEqual(parseProxyV2(header(0x20, 0x00, Buffer.alloc(0))), { command: 'local', length: 16 });
    assert.deepEqual(parseProxyV2(header(0x21, 0x00, Buffer.alloc(0))), { command: 'local', length: 16 });
  });

  test('incomplete headers ask for more; malformed or oversized ones are refused', () => {
    const h = header(0x21, 0x11, ipv4Body([192, 0, 2, 1], 1));
    for (const n of [0, 5, 12, 15, 27]) assert.equal(parseProxyV2(h.subarray(0, n)), undefined, `${n} bytes`);
    assert.throws(() => parseProxyV2(Buffer.from('<?xml version')), ProxyHeaderError);
    assert.throws(() => parseProxyV2(Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')), ProxyHeaderError);
    assert.throws(() => parseProxyV2(header(0x11, 0x11, ipv4Body([1, 2, 3, 4], 1))), /version 1/);
    assert.throws(() => parseProxyV2(header(0x22, 0x11, ipv4Body([1, 2, 3, 4], 1))), /command/);
    assert.throws(() => parseProxyV2(header(0x21, 0x11, Buffer.alloc(4))), /too short/);
    assert.throws(() => parseProxyV2(header(0x21, 0x11, Buffer.alloc(5000))), /too long/);
  });
});
