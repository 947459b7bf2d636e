import { z } from 'zod';

/** A lower-case domain name. */
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

/** A URL path for the page: `/`, or `/chat/` (segments of letters, digits, `-_.~`, not starting with a dot). */
const PAGE_PATH = /^\/(?:[A-Za-z0-9_~-][A-Za-z0-9._~-]*\/)*$/;

export const webChatOptions = z
  .object({
    /**
     * Where the page is served on the http and https listeners: `/` (default) or a prefix such as
     * `/chat/`. Its scripts and styles live under it too (`<path>converse/<version>/…`).
     */
    path: z
      .string()
      .refine((p) => PAGE_PATH.test(p), 'a path such as / or /chat/ (ends with /)')
      .default('/'),
    /**
     * The domain users log in to with just their user name (Converse's `locked_domain`: no other
     * domain is accepted). Default: the first of `hosts`. `false`: any domain may be typed in full,
     * and the first host is the default (Converse's `default_domain`).
     */
    lockedDomain: z
      .union([z.string().refine((d) => DOMAIN.test(d), 'a lower-case domain name'), z.literal(false)])
      .optional(),
    /** The page's title. */
    title: z.string().min(1).max(200).default('Natter'),
    /**
     * More Converse settings (its `converse.initialize()` options, as JSON), applied over the
     * server's: e.g. `{ "theme": "nord", "i18n": "de" }`.
     */
    converse: z.record(z.string(), z.unknown()).default({}),
  })
  .strict()
  .prefault({});

export type WebChatOptions = z.output<typeof webChatOptions>;
