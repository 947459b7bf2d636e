export { Element, xml, serialize, escapeText, escapeAttr, NS_STREAM } from './element.js';
export type { Node, Attrs, Child } from './element.js';
export { StreamParser, XmlError, DEFAULT_LIMITS } from './stream-parser.js';
export type { ParserLimits, StreamHeader, StreamParserHandlers, XmlErrorCondition } from './stream-parser.js';
export { parseElement } from './parse-element.js';
export { DocumentReader } from './document-reader.js';
export type { DocumentPath, DocumentReaderHandlers, DocumentReaderLimits } from './document-reader.js';
