export { startServer } from './server.js';
export type { NatterServer, StartOptions } from './server.js';
export { parseConfig, loadConfigFile, ConfigError } from './config.js';
export type { Config, ConfigInput } from './config.js';
export { defineModule, ModuleContext } from './core/module.js';
export type { ModuleDefinition } from './core/module.js';
export type { HookMap, RouteEvent } from './core/hooks.js';
export type { Session } from './core/session.js';
export { WEBSOCKET_PATH } from './listeners/listeners.js';
