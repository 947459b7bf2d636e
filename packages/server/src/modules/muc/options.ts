import { z } from 'zod';
import { floodControlOptions } from './flood-control.js';

/** Options of the `muc` module (XEP-0045 service). */
export const mucOptions = z
  .object({
    /** The service's domain; default `conference.<host>`. */
    domain: z.string().min(1).optional(),
    /** Rooms one account may own at once; 0: no limit. */
    maxRoomsPerUser: z.number().int().min(0).default(100),
    /** Default and ceiling of a room's `muc#roomconfig_maxusers`; 0: no limit. */
    maxOccupants: z.number().int().min(0).default(200),
    /** Messages of discussion history kept per room (default and ceiling of a room's setting). */
    historyMax: z.number().int().min(0).max(1000).default(20),
    /** Who may create rooms: any JID, or accounts of this server only. */
    creators: z.enum(['anyone', 'local']).default('local'),
    maxNickLength: z.number().int().min(1).max(1023).default(64),
    /** Longest accepted message body or subject, in characters. */
    maxBodyChars: z.number().int().min(1).default(16_384),
    /** Items accepted in one muc#admin set (bulk changes) and invitations in one message. */
    maxItemsPerRequest: z.number().int().min(1).default(100),
    /** Rooms kept on the service (persistent and temporary). */
    maxRooms: z.number().int().min(1).default(100_000),
    /**
     * Room archives (XEP-0313): 'on' new rooms keep one (owners may turn it off), 'off' new rooms
     * do not (owners may turn it on), 'never' no room keeps one. Needs the mam module.
     */
    archive: z.enum(['on', 'off', 'never']).default('on'),
    /** Largest room vCard (XEP-0486 room avatar) an owner may set, serialised, in bytes. */
    maxRoomVcardBytes: z
      .number()
      .int()
      .min(256)
      .default(128 * 1024),
    /** Fan-out charged to senders and rooms, in deliveries (flood-control.ts). */
    floodControl: floodControlOptions,
  })
  .strict()
  .prefault({});

export type MucOptions = z.infer<typeof mucOptions>;
