import { readFileSync } from 'node:fs';

/**
 * The server's version, reported by XEP-0092, ad-hoc commands and the CLI: read once from this
 * package's package.json, one directory above this module both in src/ (run through tsx) and in
 * dist/ (built and installed), so that a release needs one edit.
 */
export const NATTER_VERSION: string = (
  JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
).version;
