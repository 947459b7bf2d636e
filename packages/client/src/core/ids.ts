/** Random identifiers for stanzas (unguessable, so replies cannot be forged by guessing). */
export function randomId(bytes = 9): string {
  const b = globalThis.crypto.getRandomValues(new Uint8Array(bytes));
  let s = '';
  for (const x of b) s += x.toString(16).padStart(2, '0');
  return s;
}
