import { Element } from './element.js';
import { StreamParser, XmlError, type ParserLimits } from './stream-parser.js';

/** Parses one complete element from a string (tests, stored stanzas, WebSocket frames). */
export function parseElement(input: string, limits: Partial<ParserLimits> = {}): Element {
  let result: Element | undefined;
  let error: XmlError | undefined;
  const parser = new StreamParser(
    {
      streamStart() {},
      element(el) {
        if (result) error ??= new XmlError('not-well-formed', 'more than one root element');
        result = el;
      },
      streamEnd() {},
      error(err) {
        error = err;
      },
    },
    { ...limits, maxDepth: (limits.maxDepth ?? 32) + 1 },
  );
  parser.write('<r>');
  parser.write(input);
  parser.write('</r>');
  if (error) throw error;
  if (!result) throw new XmlError('not-well-formed', 'no element found');
  return result;
}
