// Subscriptions kept in a JSON file, so that they survive a restart of the gateway.
// Writes are coalesced (one write in flight, the latest state written next) and atomic
// (a temporary file renamed over the old one), so a crash leaves the previous or the new state.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface StoredState {
  /** Bare JID of a user → topic filters followed as roster contacts. */
  contacts: Record<string, string[]>;
  /** Topic filter → full JID of an occupant → nick. */
  rooms: Record<string, Record<string, string>>;
}

const VERSION = 1;

export class SubscriptionStore {
  private writing: Promise<void> | undefined;
  private dirty = false;

  constructor(
    private readonly file: string,
    private readonly snapshot: () => StoredState,
    private readonly onError: (err: unknown) => void,
  ) {}

  /** Reads the file; an absent file is an empty state. */
  async load(): Promise<StoredState> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { contacts: {}, rooms: {} };
      throw err;
    }
    const data = JSON.parse(text) as { version?: number } & Partial<StoredState>;
    if (data.version !== VERSION)
      throw new Error(`${this.file}: unknown data version ${String(data.version)}`);
    return { contacts: data.contacts ?? {}, rooms: data.rooms ?? {} };
  }

  /** Schedules a write of the current state. */
  save(): void {
    this.dirty = true;
    if (!this.writing) this.writing = this.drain();
  }

  /** Resolves when everything saved so far is on disk. */
  async flush(): Promise<void> {
    while (this.writing) await this.writing;
  }

  private async drain(): Promise<void> {
    try {
      await mkdir(dirname(this.file), { recursive: true });
      while (this.dirty) {
        this.dirty = false;
        const tmp = `${this.file}.tmp`;
        await writeFile(tmp, JSON.stringify({ version: VERSION, ...this.snapshot() }, null, 2) + '\n');
        await rename(tmp, this.file);
      }
    } catch (err) {
      this.onError(err);
    } finally {
      this.writing = undefined;
    }
  }
}
