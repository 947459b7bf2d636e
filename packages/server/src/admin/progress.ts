/**
 * Progress of a long command-line operation (backups, copies, bulk account creation) on stderr:
 * one line rewritten in place at a terminal, at most every 100 ms; nothing when stderr is a file or
 * a pipe (logs and scripts get the final summary only).
 */
export interface Progress {
  /** `done` of `total` (units as `unit` says), or a fraction when `total` is 1. */
  update(label: string, done: number, total: number): void;
  /** Clears the line. */
  end(): void;
}

export function progress(stream: NodeJS.WriteStream = process.stderr): Progress {
  if (!stream.isTTY) return { update() {}, end() {} };
  let last = 0;
  let shown = false;
  return {
    update(label, done, total) {
      const now = Date.now();
      if (now - last < 100 && done < total) return;
      last = now;
      const pct = total > 0 ? Math.floor((done / total) * 100) : 100;
      const count = total === 1 ? '' : ` (${done}/${total})`;
      stream.write(`\r\u001b[2K${label} ${pct}%${count}`);
      shown = true;
    },
    end() {
      if (shown) stream.write('\r\u001b[2K');
      shown = false;
    },
  };
}
