import { readdirSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { dirname, extname, join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';

const gzipped = promisify(gzip);

/** What is served, by file extension: anything else under dist/ (source maps, READMEs) is not. */
const TYPES: Record<string, { type: string; compress: boolean }> = {
  '.js': { type: 'text/javascript; charset=utf-8', compress: true },
  '.css': { type: 'text/css; charset=utf-8', compress: true },
  '.json': { type: 'application/json', compress: true },
  '.wasm': { type: 'application/wasm', compress: true },
  '.svg': { type: 'image/svg+xml', compress: true },
  '.ico': { type: 'image/x-icon', compress: true },
  '.ttf': { type: 'font/ttf', compress: true },
  '.png': { type: 'image/png', compress: false },
  '.mp3': { type: 'audio/mpeg', compress: false },
  '.ogg': { type: 'audio/ogg', compress: false },
};

/** Versioned paths never change: a new Converse gets a new path. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

interface Asset {
  file: string;
  type: string;
  compress: boolean;
  /** Read (and gzipped) at the first request, then kept: a few MB for everything a browser loads. */
  raw?: Promise<Buffer>;
  gzip?: Promise<Buffer>;
}

/** Does the client take gzip (RFC 9110 §12.5.3)? `gzip` or `*` with a q-value above 0. */
export function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  for (const part of header.split(',')) {
    const [coding, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    if (coding !== 'gzip' && coding !== '*') continue;
    const q = params.find((p) => p.startsWith('q='));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

/**
 * The browser files of the installed `converse.js` package (MPL-2.0), served from its `dist/`
 * directory as npm installed it. The files are listed once, at start: a request is looked up in
 * that list by its exact path, so nothing outside dist/ (and nothing but the types above) can be
 * reached, whatever `..`, `%2e` or `\` a URL holds.
 */
export class ConverseAssets {
  private readonly files = new Map<string, Asset>();

  private constructor(
    readonly version: string,
    readonly dir: string,
  ) {
    this.index(dir);
  }

  /**
   * Finds the installed package (a runtime dependency of @natter/server). Throws, saying what to
   * do, when it is missing.
   */
  static locate(from: string = import.meta.url): ConverseAssets {
    let dist: string;
    try {
      // The package exports ./dist/* (not ./package.json): resolve its main bundle.
      dist = dirname(createRequire(from).resolve('converse.js/dist/converse.min.js'));
    } catch (err) {
      throw new Error(
        'the web-chat module needs the converse.js package, a dependency of @natter/server: reinstall the server (npm install), or turn the module off',
        { cause: err },
      );
    }
    const pkg = JSON.parse(readFileSync(join(dist, '..', 'package.json'), 'utf8')) as { version?: unknown };
    if (typeof pkg.version !== 'string' || !/^[0-9A-Za-z.+-]+$/.test(pkg.version))
      throw new Error(`converse.js in ${dirname(dist)} has no usable version in its package.json`);
    return new ConverseAssets(pkg.version, dist);
  }

  /** Relative paths served (`converse.min.js`, `chunkjs/locales/de-LC_MESSAGES-converse-po.js` …). */
  paths(): string[] {
    return [...this.files.keys()];
  }

  /** Serves `path` (relative to dist/, as the URL has it); false when there is no such file. */
  async serve(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    const asset = this.files.get(path);
    if (!asset) return false;
    const gz = asset.compress && acceptsGzip(req.headers['accept-encoding']);
    const body = await this.body(asset, gz);
    const headers: OutgoingHttpHeaders = {
      'content-type': asset.type,
      'content-length': body.length,
      'cache-control': IMMUTABLE,
      'x-content-type-options': 'nosniff',
      'cross-origin-resource-policy': 'same-origin',
    };
    if (asset.compress) headers.vary = 'accept-encoding';
    if (gz) headers['content-encoding'] = 'gzip';
    res.writeHead(200, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  }

  /** The file's bytes, gzipped or not, read (and compressed) once; a failure is tried again next time. */
  private body(asset: Asset, gz: boolean): Promise<Buffer> {
    const key = gz ? 'gzip' : 'raw';
    let loading = asset[key];
    if (!loading) {
      const started = gz ? this.body(asset, false).then((b) => gzipped(b)) : readFile(asset.file);
      asset[key] = loading = started;
      started.catch(() => {
        if (asset[key] === started) asset[key] = undefined;
      });
    }
    return loading;
  }

  /** Lists the regular files of a served type under `dir` (symbolic links are not followed). */
  private index(dir: string): void {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (entry.isDirectory()) this.index(full);
      else if (entry.isFile()) {
        const known = TYPES[extname(entry.name).toLowerCase()];
        if (!known) continue;
        const path = relative(this.dir, full).split(sep).join('/');
        this.files.set(path, { file: full, ...known });
      }
    }
  }
}
