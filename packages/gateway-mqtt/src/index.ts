// @natter/gateway-mqtt: a reference XMPP↔MQTT gateway on @natter/component.
export {
  loadConfig,
  parseConfig,
  ConfigError,
  DEFAULT_LIMITS,
  ENV_VARS,
  type GatewayConfig,
} from './config.js';
export { MqttGateway, NS_MQTT, type GatewayOptions, type Log, type LogLevel } from './gateway.js';
export { startGateway, type RunningGateway, type StartOptions } from './run.js';
export { topicToLocal, localToTopic, topicMatches, filterProblem } from './topic-address.js';
export type { BinaryPolicy } from './payload.js';
