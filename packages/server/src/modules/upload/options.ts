import { z } from 'zod';

const MiB = 1024 * 1024;

/** A lower-case domain name (as configured components are keyed). */
const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;

function isBaseUrl(s: string): boolean {
  try {
    const u = new URL(s);
    return (u.protocol === 'https:' || u.protocol === 'http:') && !u.search && !u.hash && !u.username;
  } catch {
    return false;
  }
}

export const uploadOptions = z
  .object({
    /**
     * Where clients reach the upload paths, e.g. `https://upload.example.com` (a TLS reverse proxy
     * passing `/upload/` to an http listener). Slots are `<baseUrl>/upload/<secret>/<file name>`.
     * Default: the first http listener, `http://<its address or the domain>:<port>` (a warning:
     * clients need HTTPS in production).
     */
    baseUrl: z
      .string()
      .refine(isBaseUrl, 'an http(s) URL without query, fragment or credentials')
      .transform((s) => s.replace(/\/+$/, ''))
      .optional(),
    /** Largest file, in bytes (advertised as XEP-0363 max-file-size). */
    maxFileBytes: z
      .number()
      .int()
      .min(1)
      .default(100 * MiB),
    /** Bytes one account may keep stored (and reserved by open slots). */
    quotaBytes: z
      .number()
      .int()
      .min(1)
      .default(1024 * MiB),
    /** Bytes the whole service may keep stored, all accounts together (default: no limit). */
    maxTotalBytes: z.number().int().min(1).optional(),
    /** Days a file is kept after its upload; then a sweep deletes it (fractions allowed). */
    expiryDays: z.number().positive().default(30),
    /** Seconds a slot may wait for its PUT. */
    slotTtlSeconds: z.number().int().min(1).max(86_400).default(300),
    /** Slot requests one account may make per minute (a burst of as many, then that rate). */
    slotsPerMinute: z.number().int().min(1).default(30),
    /** External components (XEP-0114 domains) that may request slots too, each with its own quota. */
    allowComponents: z
      .array(z.string().refine((d) => DOMAIN.test(d), 'a lower-case domain name'))
      .default([]),
    /** How often expired files and unused slots are deleted. */
    sweepIntervalSeconds: z.number().int().min(1).default(3600),
  })
  .strict()
  .prefault({});

export type UploadOptions = z.output<typeof uploadOptions>;
