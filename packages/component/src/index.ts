// @natter/component: the gateway SDK (XEP-0114 external components) for Node.
export {
  Component,
  createComponent,
  type ComponentOptions,
  type ComponentEvents,
  type ComponentMessage,
  type ComponentPresence,
  type ComponentStatus,
  type IqHandler,
  type IqRequest,
  type Logger,
  type LogLevel,
  type ReconnectOptions,
} from './component.js';
export {
  ComponentError,
  TimeoutError,
  StanzaError,
  StreamError,
  type ComponentErrorCondition,
} from './errors.js';
export { Emitter, type Listener, type WaitForOptions } from './emitter.js';
export { handshakeDigest, parseService } from './xep-0114-handshake.js';
export type { DiscoIdentity, DiscoItem } from './disco/xep-0030-disco.js';
export {
  Puppet,
  Puppets,
  type PuppetPresence,
  type PuppetsEvents,
  type PuppetsOptions,
  type SubscribeRequest,
} from './puppets/puppets.js';
export {
  Room,
  Rooms,
  type RoomEvents,
  type RoomOptions,
  type RoomUser,
  type RoomsEvents,
} from './rooms/rooms.js';
export type { RegistrationField, RegistrationOptions } from './registration/xep-0077-registration.js';
export {
  NS_COMMANDS,
  type CommandAction,
  type CommandContext,
  type CommandHandler,
  type CommandOptions,
  type CommandResult,
} from './commands/xep-0050-commands.js';
export { escapeLocal, unescapeLocal, Jid, jid, parseJid } from '@natter/jid';
export { xml, Element } from '@natter/xml';
export { buildForm, parseForm, type DataForm, type FormField } from '@natter/protocol';
