/** Messages between the coordinator (`pool.ts`) and its worker processes (`worker.ts`). */
export interface WorkerConfig {
  host: string;
  port: number;
  /** Port for direct TLS (XEP-0368), when `tls` is `direct`. */
  tlsPort?: number;
  domain: string;
  userPrefix: string;
  password: string;
  tls: 'none' | 'starttls' | 'direct';
  mech?: string;
  /** Source addresses (127.0.0.x) this worker spreads its connections over. */
  localAddresses: string[];
  cacheDir: string;
  loginTimeoutMs: number;
}

export interface TrafficSpec {
  mode: 'chat' | 'muc';
  /** Distinguishes phases so a late message of an earlier phase is not counted. */
  phaseTag: number;
  /** Closed loop: this many messages in flight per worker (saturation). */
  window?: number;
  /** Open loop: messages per second from this worker. */
  rate?: number;
  durationMs: number;
  drainMs: number;
  /** Extra body characters. */
  bodyPad: number;
  /** Chat only: fixed pairs (this worker's users in id order, 1st with 2nd, 3rd with 4th …). */
  pairs?: boolean;
  /** Also report the latency of the messages sent from this many ms after the phase start on. */
  steadyAfterMs?: number;
}

export type Command =
  | { cmd: 'init'; cfg: WorkerConfig }
  | { cmd: 'login'; ids: number[]; concurrency: number; rosterGet: boolean }
  | { cmd: 'loginLoop'; ids: number[]; concurrency: number; durationMs: number; rosterGet: boolean }
  | { cmd: 'joinRooms'; rooms: { jid: string; members: number[] }[]; concurrency: number }
  | { cmd: 'traffic'; spec: TrafficSpec }
  | { cmd: 'counters' }
  | { cmd: 'resetCounters' }
  | { cmd: 'logoutAll' }
  | { cmd: 'floodStart' }
  | { cmd: 'mucFloodStart'; id: number; room: string }
  | { cmd: 'floodReport' }
  | { cmd: 'unauthStart'; count: number; addresses: string[] }
  | { cmd: 'floodStop' }
  | { cmd: 'exit' };

// Replies are plain JSON objects; the fields depend on the command (see worker.ts).
export type Reply = Record<string, any>;
