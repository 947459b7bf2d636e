// Everything both entry points export (nothing here may import node:* or a *.node.ts file).
export {
  Client,
  CAPS_NODE,
  type ClientOptions,
  type ClientEvents,
  type ClientStatus,
  type IqHandler,
  type IqType,
} from './core/client.js';
export { Emitter, TimeoutError, type Listener, type WaitForOptions } from './core/emitter.js';
export {
  ClientError,
  AuthenticationError,
  NotConnectedError,
  StanzaError,
  StreamError,
  type ClientErrorCode,
} from './core/errors.js';
export type {
  PluginDefinition,
  PluginContext,
  PluginMap,
  PluginApis,
  Hooks,
  InlineRequest,
  NegotiationStep,
  NoPlugins,
  IncomingHook,
  OutgoingHook,
} from './core/plugin.js';
export type { XmppStream, XmppStreamEvents } from './core/xmpp-stream.js';
export { randomId } from './core/ids.js';
export { missingApis, type RuntimeNeeds } from './core/runtime-check.js';
export {
  memoryCredentials,
  webStorageCredentials,
  type CredentialStore,
  type StoredCredentials,
  type FastToken,
  type WebStorageLike,
} from './core/credentials.js';
export type {
  Transport,
  TransportFactory,
  TransportContext,
  TransportEvents,
  TlsOptions,
} from './transport/transport.js';
export {
  WebSocketTransport,
  browserWebSocketTransport,
  type WebSocketLike,
  type WebSocketConstructor,
} from './transport/websocket.js';
export {
  hostMetaResolver,
  WEBSOCKET_REL,
  type EndpointResolver,
  type HostMetaOptions,
} from './connect/discovery.js';
export { xml, Element } from '@natter/xml';
export { Jid, parseJid, jid } from '@natter/jid';
export { ping, sendPing, type PingApi } from './ping/xep-0199-ping.js';
export { autoPing, type AutoPingApi, type AutoPingEvents, type AutoPingOptions } from './ping/auto-ping.js';
export {
  reconnect,
  type ReconnectApi,
  type ReconnectEvents,
  type ReconnectOptions,
} from './reconnect/reconnect.js';
export {
  roster,
  parseRosterItem,
  type RosterApi,
  type RosterEvents,
  type RosterOptions,
  type PresenceInfo,
} from './roster/roster.js';
export {
  memoryRosterStorage,
  type RosterItem,
  type RosterStorage,
  type StoredRoster,
} from './roster/roster-storage.js';
export {
  receipts,
  type ReceiptsApi,
  type ReceiptsEvents,
  type ReceiptsOptions,
} from './receipts/xep-0184-receipts.js';
export {
  pubsub,
  pubsubRequests,
  type PubSubApi,
  type PubSubEvents,
  type PubSubItem,
  type PubSubOptions,
  type FormValues,
} from './pubsub/xep-0060-pubsub.js';
export {
  vcard,
  parseVCard,
  buildVCard,
  type VCard,
  type VCardFields,
  type VCardApi,
  type VCardEvents,
  type VCardOptions,
} from './vcard/xep-0054-vcard.js';
export { memoryVCardStorage, type VCardStorage, type StoredVCard } from './vcard/vcard-storage.js';
export {
  avatar,
  sha1Hex,
  NS_AVATAR_DATA,
  NS_AVATAR_METADATA,
  type AvatarApi,
  type AvatarEvents,
  type AvatarInfo,
  type AvatarOptions,
} from './avatar/avatar.js';
export {
  disco,
  parseDiscoInfo,
  type DiscoApi,
  type DiscoEvents,
  type DiscoInfo,
  type DiscoItem,
  type DiscoOptions,
} from './disco/xep-0030-disco.js';
export { capsVerification, type DiscoIdentity } from './core/xep-0115-caps.js';
export {
  muc,
  type MucOptions,
  type MucApi,
  type MucEvents,
  type MucRole,
  type MucAffiliation,
  type Occupant,
  type HistoryOptions,
  type JoinOptions,
  type ListItem,
  type LeaveReason,
} from './muc/xep-0045-muc.js';
export {
  streamManagement,
  type StreamManagementApi,
  type StreamManagementEvents,
  type StreamManagementOptions,
} from './stream-management/xep-0198-stream-management.js';
export {
  readMessage,
  stanzaIdBy,
  type MessageView,
  type MessageType,
  type StanzaId,
  type DelayInfo,
} from './message/message-view.js';
export {
  mam,
  type MamApi,
  type MamEvents,
  type MamOptions,
  type MamQuery,
  type MamResult,
  type MamPage,
  type MamPreferences,
  type CatchUpResult,
} from './mam/xep-0313-mam.js';
export {
  memoryMessageStore,
  compareMessages,
  type MessageStore,
  type StoredMessage,
  type SyncPoint,
  type MessageCursor,
  type MessageRef,
  type ListOptions,
} from './mam/message-store.js';
export { indexedDbMessageStore } from './mam/indexeddb-message-store.js';
export {
  carbons,
  carbonsPrivate,
  noCopy,
  type Carbon,
  type CarbonsApi,
  type CarbonsEvents,
  type CarbonsOptions,
} from './carbons/xep-0280-carbons.js';
export { type MessageOrigin } from './carbons/chat-messages.js';
export { blocking, type BlockingApi, type BlockingEvents } from './blocking/xep-0191-blocking.js';
export {
  csi,
  documentVisibility,
  type ClientState,
  type CsiApi,
  type CsiEvents,
  type CsiOptions,
  type VisibilitySource,
} from './csi/xep-0352-csi.js';
export {
  chatStates,
  chatStateOf,
  type ChatState,
  type ChatStatesApi,
  type ChatStatesEvents,
  type ChatStatesOptions,
} from './chat-states/xep-0085-chat-states.js';
export {
  markers,
  markable,
  markerIdOf,
  NS_CHAT_MARKERS,
  type ChatMarker,
  type MarkerEvent,
  type MarkersApi,
  type MarkersEvents,
  type MarkersOptions,
} from './markers/xep-0333-markers.js';
export {
  corrections,
  replacedIdOf,
  NS_CORRECTION,
  type CorrectionsApi,
  type CorrectionsEvents,
} from './corrections/xep-0308-corrections.js';
export {
  retractions,
  retractedIdOf,
  NS_RETRACT,
  type RetractionsApi,
  type RetractionsEvents,
  type RetractionsOptions,
} from './retractions/xep-0424-retractions.js';
export {
  reactions,
  reactionsOf,
  NS_REACTIONS,
  type ReactionsApi,
  type ReactionsEvents,
} from './reactions/xep-0444-reactions.js';
export {
  bookmarks,
  parseBookmark,
  buildBookmark,
  BookmarksError,
  NS_BOOKMARKS,
  type Bookmark,
  type BookmarkInput,
  type BookmarksApi,
  type BookmarksEvents,
  type BookmarksOptions,
  type BookmarksErrorCode,
} from './bookmarks/xep-0402-bookmarks.js';
// In Node, index.node.ts replaces `httpUpload` with one whose PUT uses node:http/https.
export {
  httpUpload,
  HttpUploadError,
  NS_HTTP_UPLOAD,
  xhrPut,
  fetchPut,
  type HttpPut,
  type HttpPutRequest,
  type HttpUploadApi,
  type HttpUploadEvents,
  type HttpUploadOptions,
  type HttpUploadErrorCode,
  type UploadBody,
  type UploadOptions,
  type UploadService,
  type UploadSlot,
} from './http-upload/xep-0363-http-upload.js';
export {
  push,
  PushError,
  NS_PUSH,
  type PushApi,
  type PushEnableOptions,
  type PushErrorCode,
  type PushOptions,
} from './push/xep-0357-push.js';
