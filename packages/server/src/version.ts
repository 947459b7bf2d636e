/** The server's version, reported by XEP-0092 and the CLI. */
export const NATTER_VERSION = '0.1.0';
