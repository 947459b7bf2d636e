import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';

/**
 * Starts a worker thread on `js`, the URL of a compiled `.js` file next to the caller
 * (`new URL('./x.js', import.meta.url)`). When the server runs from source (development and tests),
 * only the `.ts` file exists: it is loaded through tsx's loader, registered inside the thread
 * (Node 20 does not carry `--import tsx` over to worker threads).
 */
export function startWorker(js: URL, workerData: unknown): Worker {
  if (existsSync(fileURLToPath(js))) return new Worker(js, { workerData });
  const ts = new URL(js.href.replace(/\.js$/, '.ts')).href;
  const tsx = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(ts)}); })`;
  return new Worker(boot, { eval: true, workerData });
}
