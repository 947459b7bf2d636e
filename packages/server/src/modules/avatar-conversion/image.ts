/** What an avatar's bytes say about themselves: their media type and, when cheap, their size. */
export interface ImageInfo {
  type: 'image/png' | 'image/jpeg' | 'image/gif' | 'image/webp';
  width?: number;
  height?: number;
}

/** The media types converted between vCard photos and XEP-0084 avatars. */
export const IMAGE_TYPES: readonly ImageInfo['type'][] = [
  'image/png',
  'image/jpeg',
  'image/gif',
  'image/webp',
];

/**
 * Recognises PNG, JPEG, GIF and WebP by their signatures (never by a declared type), with width
 * and height read from the PNG IHDR chunk, the JPEG start-of-frame segment or the GIF screen
 * descriptor (left out for WebP, or when the header is cut short). Undefined for anything else.
 */
export function sniffImage(bytes: Uint8Array): ImageInfo | undefined {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (b.length >= 8 && b.subarray(0, 8).equals(PNG)) {
    // Signature, then the IHDR chunk: length (4), "IHDR" (4), width (4), height (4).
    if (b.length >= 24 && b.toString('latin1', 12, 16) === 'IHDR')
      return sized('image/png', b.readUInt32BE(16), b.readUInt32BE(20));
    return { type: 'image/png' };
  }
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return jpeg(b);
  if (b.length >= 6 && (b.toString('latin1', 0, 6) === 'GIF87a' || b.toString('latin1', 0, 6) === 'GIF89a')) {
    if (b.length >= 10) return sized('image/gif', b.readUInt16LE(6), b.readUInt16LE(8));
    return { type: 'image/gif' };
  }
  if (b.length >= 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP')
    return { type: 'image/webp' };
  return undefined;
}

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function sized(type: ImageInfo['type'], width: number, height: number): ImageInfo {
  return width > 0 && height > 0 ? { type, width, height } : { type };
}

/** JPEG: walks the segments to the first start-of-frame marker (SOF0-SOF15 but DHT, JPG, DAC). */
function jpeg(b: Buffer): ImageInfo {
  let i = 2;
  while (i + 4 <= b.length) {
    if (b[i] !== 0xff) break;
    const marker = b[i + 1]!;
    if (marker === 0xff) {
      i++; // fill byte
      continue;
    }
    // Markers without a length: TEM and RSTn; SOS/EOI end the headers.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      i += 2;
      continue;
    }
    if (marker === 0xda || marker === 0xd9) break;
    const length = b.readUInt16BE(i + 2);
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      if (i + 9 <= b.length) return sized('image/jpeg', b.readUInt16BE(i + 7), b.readUInt16BE(i + 5));
      break;
    }
    if (length < 2) break;
    i += 2 + length;
  }
  return { type: 'image/jpeg' };
}
