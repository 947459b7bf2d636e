import type { ModuleDefinition } from '../core/module.js';
import disco from './disco/disco.js';
import ping from './ping/ping.js';
import version from './version/version.js';
import register from './register/register.js';
import roster from './roster/roster.js';
import presence from './presence/presence.js';
import muc from './muc/muc.js';
import sm from './sm/sm.js';
import csi from './csi/csi.js';
import limits from './limits/limits.js';
import offline from './offline/offline.js';
import vcard from './vcard/vcard.js';
import blocking from './blocking/blocking.js';
import last from './last/last.js';
import time from './time/time.js';
import carbons from './carbons/carbons.js';
import mam from './mam/mam.js';
import pubsub from './pubsub/pubsub.js';
import pep from './pep/pep.js';
import privateStorage from './private/private.js';
import privilege from './privilege/xep-0356-privilege.js';
import externalServices from './external-services/external-services.js';
import contactAddresses from './contact-addresses/contact-addresses.js';
import upload from './upload/upload.js';
import push from './push/push.js';
import avatarConversion from './avatar-conversion/avatar-conversion.js';
import adhoc from './adhoc/adhoc.js';
import adminCommands from './admin-commands/admin-commands.js';
import fast from './fast/fast.js';
import webChat from './web-chat/web-chat.js';

/**
 * Every module shipped with the server, by name. Adding a XEP: a new folder under modules/ and
 * one line here. Enabled by default unless the module says otherwise; `modules: { name: false }`
 * in the configuration disables one, `modules: { name: { …options } }` configures it.
 */
export const builtinModules: ModuleDefinition[] = [
  disco,
  ping,
  version,
  register,
  roster,
  presence,
  offline,
  vcard,
  blocking,
  last,
  time,
  sm,
  csi,
  limits,
  carbons,
  mam,
  pubsub,
  pep,
  avatarConversion,
  privateStorage,
  muc,
  privilege,
  externalServices,
  contactAddresses,
  upload,
  push,
  adhoc,
  adminCommands,
  fast,
  webChat,
];
