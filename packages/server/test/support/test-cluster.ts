import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { MeshBus, type MeshMember } from '../../src/core/cluster/mesh-bus.js';
import { createLogger } from '../../src/core/logger.js';
import type { ConfigInput } from '../../src/config.js';
import { startTestServer, type TestServer } from './test-server.js';

export interface TestCluster {
  nodes: TestServer[];
  buses: MeshBus[];
  dataDir: string;
  /** Tells the surviving nodes that node `i` is gone (as the primary does when a worker dies), then stops it. */
  lose(i: number): Promise<void>;
  destroy(): Promise<void>;
}

let clusterCount = 0;

/**
 * N nodes of one cluster in this process: real servers sharing one data directory (one SQLite
 * file, or one PostgreSQL database with NATTER_TEST_STORAGE=postgres), joined by the real mesh
 * bus over Unix sockets. This test plays the primary of `--workers`: it tells every node who is
 * alive. Clients choose their node by its ports (`nodes[i].port('c2s')`).
 */
export async function startTestCluster(n: number, config: Partial<ConfigInput> = {}): Promise<TestCluster> {
  const dataDir = mkdtempSync(join(tmpdir(), 'natter-cluster-'));
  const key = randomBytes(16).toString('hex');
  const s2sSecret = randomBytes(16).toString('hex');
  const tag = `${process.pid}-${++clusterCount}`;
  const members: MeshMember[] = [];
  const buses: MeshBus[] = [];
  const nodes: TestServer[] = [];
  const log = createLogger((process.env.NATTER_TEST_LOG as 'info' | undefined) ?? 'silent');
  const announce = () => {
    for (const b of buses) b.setMembers(members);
  };
  for (let i = 0; i < n; i++) {
    const id = `n${i + 1}.${tag}`;
    const bus = new MeshBus(id, `\0natter-test-${tag}-${id}`, key, log.child({ node: id }), (msg) => {
      if (msg.natter === 'joined') {
        members.push({ id: msg.id, path: msg.path, rank: members.length + 1 });
        announce();
      }
    });
    buses.push(bus);
    // The first node alone creates the schema (as the first worker does).
    nodes.push(await startTestServer(config, { dataDir, bus, s2sSecret }));
  }
  announce();
  const lost = new Set<number>();
  return {
    nodes,
    buses,
    dataDir,
    async lose(i) {
      lost.add(i);
      const id = buses[i]!.nodeId;
      const at = members.findIndex((m) => m.id === id);
      if (at >= 0) members.splice(at, 1);
      for (const [j, b] of buses.entries()) if (!lost.has(j)) b.setMembers(members);
      await nodes[i]!.stop();
    },
    async destroy() {
      for (const [i, node] of nodes.entries()) if (!lost.has(i)) await node.stop();
      // Every node is stopped: the first one's destroy removes the shared folder (and database).
      await nodes[0]!.destroy();
    },
  };
}
