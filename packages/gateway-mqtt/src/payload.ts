// MQTT payloads are bytes; XMPP bodies are text. UTF-8 payloads whose characters XML 1.0 allows
// are forwarded as they are; any other payload is either sent in base64 with a note saying so, or
// skipped, as configured.

export type BinaryPolicy = 'base64' | 'skip';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
// Characters outside XML 1.0's Char production (§2.2): most C0 controls, lone surrogates, U+FFFE/U+FFFF.
const NOT_XML_CHAR =
  // eslint-disable-next-line no-control-regex
  /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/** Decodes a payload as text fit for an XMPP body, or undefined when it is not UTF-8 XML text. */
export function payloadText(payload: Uint8Array): string | undefined {
  let s: string;
  try {
    s = decoder.decode(payload);
  } catch {
    return undefined;
  }
  return NOT_XML_CHAR.test(s) ? undefined : s;
}

/** The body for a payload under a policy, or undefined when the payload is skipped. */
export function payloadBody(
  payload: Uint8Array,
  policy: BinaryPolicy,
): { body: string; binary: boolean } | undefined {
  const text = payloadText(payload);
  if (text !== undefined) return { body: text, binary: false };
  if (policy === 'skip') return undefined;
  const b64 = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('base64');
  return { body: `[binary payload, ${payload.byteLength} bytes, base64] ${b64}`, binary: true };
}
