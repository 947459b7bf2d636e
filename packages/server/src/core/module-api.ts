/**
 * The module API: the one file a server module imports from the server (rule 5 of the house,
 * enforced by `no-restricted-imports` in eslint.config.js). Everything a module may use is
 * re-exported here; anything not listed (ServerCore, stream classes, the router's internals) is
 * out of a module's reach, so the core can change behind this surface without touching modules.
 *
 * Modules also import the shared packages (@natter/xml, @natter/jid, @natter/protocol), zod and
 * kysely, files of their own folder, and another module's declared `api.ts`.
 */
export { defineModule, ModuleContext } from './module.js';
export type { ModuleDefinition, IqTarget, ServerConfigView, SessionInfo } from './module.js';
export type {
  RouteEvent,
  RouteOutcome,
  HandleResult,
  MaybePromise,
  HandleHook,
  NotifyHook,
  HookMap,
  HookName,
} from './hooks.js';
export { IqDispatcher, resultReply } from './iq-dispatcher.js';
export type { IqHandler, IqRequest } from './iq-dispatcher.js';
export type { ServiceHandler } from './router.js';
export type { Session, SessionRecord } from './session.js';
export type { SessionDirectory } from './session-registry.js';
export { isLocal } from './session-registry.js';
export type { ClusterView } from './cluster/cluster.js';
export type {
  StreamState,
  StreamView,
  ClientStreamView,
  StreamLimiter,
  Admission,
  CloseInterceptor,
} from './stream/stream-view.js';
export type { Identity } from './host.js';
export type {
  UserAgent,
  Sasl2Request,
  Sasl2MechanismRequest,
  Sasl2Authenticated,
  Sasl2InlineResult,
  Sasl2Extension,
  Bind2Feature,
} from './sasl2-extension.js';
export type { Logger } from './logger.js';
export type { StorageConfig } from '../storage/database.js';
export type { HttpEndpoints, HttpHandler, HttpRequestContext } from './http-routes.js';
export { NATTER_VERSION } from '../version.js';
export { AdminCommandFailed, type AdminCommandRunner } from './admin-commands.js';
