import { xml, type Element } from '@natter/xml';
import type { Jid } from '@natter/jid';
import { NS, StanzaError, buildForm } from '@natter/protocol';
import { IqDispatcher, type IqRequest, type ModuleContext, type RouteEvent } from '../../core/module-api.js';
import type { UploadOptions } from './options.js';
import {
  NS_UPLOAD,
  UPLOAD_PATH,
  largestFile,
  type SlotRequest,
  type UploadService,
} from './upload-service.js';

/** Longest file name, in UTF-8 bytes (what most file systems take for one name). */
export const MAX_FILENAME_BYTES = 255;

/** `type/subtype` with optional parameters, RFC 9110 tokens; no room for header injection. */
const TOKEN = "[A-Za-z0-9!#$%&'*+.^_`|~-]+";
// Spaces and tabs only (a `&#10;` would reach writeHead and make every download fail), and quoted
// values in printable ASCII (a header value is Latin-1 at most).
const MEDIA_TYPE = new RegExp(
  `^${TOKEN}/${TOKEN}([ \\t]*;[ \\t]*${TOKEN}=(${TOKEN}|"[\\x20\\x21\\x23-\\x5b\\x5d-\\x7e]*"))*$`,
);

/**
 * Reads a XEP-0363 §4 `<request/>`. The file name is only ever shown (in the URL, percent-encoded,
 * and in Content-Disposition): files are stored under random ids. Names that could still surprise
 * someone are refused rather than rewritten: empty, `.`/`..`, with a slash or backslash, with
 * control characters (NUL cannot even be sent in XML) or format characters (bidirectional
 * overrides), longer than 255 UTF-8 bytes.
 */
export function parseRequest(el: Element): SlotRequest {
  const filename = el.attrs.filename;
  if (filename === undefined || filename === '')
    throw new StanzaError('bad-request', { text: 'the request needs a filename' });
  if (filename === '.' || filename === '..' || /[/\\]/.test(filename))
    throw new StanzaError('bad-request', { text: 'the file name may not contain a path' });
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f]/.test(filename))
    throw new StanzaError('bad-request', { text: 'the file name may not contain control characters' });
  // Format characters (U+202E RIGHT-TO-LEFT OVERRIDE and the like) can disguise an extension:
  // 'invoice\u202Efdp.exe' shows as 'invoiceexe.pdf' in a download dialog.
  if (/\p{Cf}/u.test(filename))
    throw new StanzaError('bad-request', { text: 'the file name may not contain format characters' });
  if (Buffer.byteLength(filename, 'utf8') > MAX_FILENAME_BYTES)
    throw new StanzaError('bad-request', {
      text: `the file name is longer than ${MAX_FILENAME_BYTES} bytes`,
    });
  const sizeText = el.attrs.size;
  if (sizeText === undefined) throw new StanzaError('bad-request', { text: 'the request needs a size' });
  if (!/^\d{1,15}$/.test(sizeText))
    throw new StanzaError('bad-request', { text: 'the size must be a number of bytes' });
  const size = Number(sizeText);
  const type = el.attrs['content-type']?.trim();
  if (type && (type.length > 255 || !MEDIA_TYPE.test(type)))
    throw new StanzaError('bad-request', { text: 'the content-type is not a media type' });
  return { filename, size, contentType: type ? type : undefined };
}

/** The `upload.<domain>` service of one host: disco and slot requests (XEP-0363 §3-5). */
export class SlotService {
  private readonly iq: IqDispatcher;
  private readonly components: Set<string>;

  constructor(
    private readonly ctx: ModuleContext<UploadOptions>,
    readonly domain: string,
    private readonly service: UploadService,
    /** The base of slot URLs; undefined when the module could not tell (no baseUrl, no http listener). */
    private readonly baseUrl: string | undefined,
  ) {
    this.components = new Set(ctx.options.allowComponents);
    this.iq = new IqDispatcher((_owner, err, stanza) =>
      ctx.log.error({ err, stanza: stanza.toString().slice(0, 500) }, 'upload IQ handler failed'),
    );
    this.iq.on('get', NS.discoInfo, 'query', (req) => this.info(req));
    this.iq.on('get', NS.discoItems, 'query', (req) => {
      if (req.payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
      return xml('query', { xmlns: NS.discoItems });
    });
    this.iq.on('get', NS_UPLOAD, 'request', (req) => this.slot(req));
  }

  handle(ev: RouteEvent): void {
    const { stanza } = ev;
    if (stanza.name === 'iq') {
      if (ev.to.local !== '' || ev.to.resource !== '') return this.ctx.bounce(ev, 'service-unavailable');
      const reply = this.iq.dispatch(ev);
      if (reply === undefined) return this.ctx.bounce(ev, 'service-unavailable');
      if (reply instanceof Promise) void reply.then((r) => this.ctx.send(r));
      else void this.ctx.send(reply);
      return;
    }
    if (stanza.name === 'message') this.ctx.bounce(ev, 'service-unavailable');
  }

  /** XEP-0363 §3: identity store/file, the feature and the max-file-size form (XEP-0128). */
  private info(req: IqRequest): Element {
    if (req.payload.attrs.node !== undefined) throw new StanzaError('item-not-found');
    return xml(
      'query',
      { xmlns: NS.discoInfo },
      xml('identity', { category: 'store', type: 'file', name: 'HTTP File Upload' }),
      [NS.discoInfo, NS.discoItems, NS_UPLOAD].sort().map((v) => xml('feature', { var: v })),
      buildForm({
        type: 'result',
        formType: NS_UPLOAD,
        fields: [{ var: 'max-file-size', values: [String(largestFile(this.ctx.options))] }],
      }),
    );
  }

  /**
   * Who may upload: accounts of this host, and the components listed in `allowComponents` (their
   * domain owns the files). Anyone else, a remote server's user or another host's, is forbidden.
   */
  private ownerOf(from: Jid): string | undefined {
    if (from.domain === this.ctx.domain && from.local !== '') return from.toBareString();
    if (this.components.has(from.domain) && Object.hasOwn(this.ctx.config.components, from.domain))
      return from.domain;
    return undefined;
  }

  private async slot(req: IqRequest): Promise<Element> {
    const owner = this.ownerOf(req.from);
    if (owner === undefined)
      throw new StanzaError('forbidden', { text: `only accounts of ${this.ctx.domain} may upload here` });
    if (this.baseUrl === undefined || this.service.stopping)
      throw new StanzaError('service-unavailable', { text: 'the upload service has no HTTP address' });
    this.service.charge(owner);
    const request = parseRequest(req.payload);
    const secret = await this.service.requestSlot(owner, request);
    const url = `${this.baseUrl}${UPLOAD_PATH}${secret}/${encodeURIComponent(request.filename)}`;
    this.ctx.log.debug({ owner, size: request.size }, 'upload slot handed out');
    // The secret in the URL authorises the PUT, so <put/> carries no header (see http.ts).
    return xml('slot', { xmlns: NS_UPLOAD }, xml('put', { url }), xml('get', { url }));
  }
}
