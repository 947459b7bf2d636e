/**
 * How the nodes of a cluster talk (docs/decisions/0009): a message to one node, or to all, in the
 * order it was sent (per pair of nodes), and who is alive. Two implementations: the mesh of Unix
 * sockets between the workers of `natter serve --workers N` (mesh-bus.ts), and Redis pub/sub
 * between machines (redis-bus.ts).
 */
export interface BusMessage {
  /** The message type (cluster.ts). */
  t: string;
  [key: string]: unknown;
}

/** A live node: its name and its rank (lower joined earlier; the oldest node owns the services). */
export interface Member {
  id: string;
  rank: number;
}

export interface BusEvents {
  message(from: string, msg: BusMessage): void;
  /** A node joined (or this node joined a cluster that had it). */
  nodeUp(member: Member): void;
  /** A node left or was found dead: its sessions are gone. */
  nodeDown(id: string): void;
}

export interface NodeBus {
  /** This node's name, unique across the cluster and the node's restarts. */
  readonly nodeId: string;
  /** The live nodes, this one included. */
  members(): readonly Member[];
  /** Joins: from here on, messages and membership changes reach `events`. */
  start(events: BusEvents): Promise<void>;
  /**
   * Sends to one node. `undelivered` runs (later, at most once) when the bus knows the node did
   * not get the message: nobody reads the node's channel (dead, or between a restart and its
   * subscription), the connection to Redis is down, or the node left before the message was
   * written. A message the node received and then lost by dying is not reported.
   */
  send(node: string, msg: BusMessage, undelivered?: () => void): void;
  broadcast(msg: BusMessage): void;
  /** Leaves the cluster (after this node's sessions ended and were unpublished). */
  stop(): Promise<void>;
}
