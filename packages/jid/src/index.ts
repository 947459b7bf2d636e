export { Jid, jid, parseJid, tryParseJid } from './jid.js';
export { JidError, type JidErrorCode, type JidPart } from './jid-error.js';
export { escapeLocal, unescapeLocal } from './escape.js';
export { enforceClass, type StringClass } from './precis.js';
