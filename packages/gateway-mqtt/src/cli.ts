#!/usr/bin/env node
// natter-gateway-mqtt [config.json]: runs the gateway until SIGINT/SIGTERM. Options can also come
// from NATTER_MQTT_* environment variables (see the README). Logs are JSON lines on stderr.
import { parseArgs } from 'node:util';
import { ConfigError, ENV_VARS, loadConfig } from './config.js';
import type { Log } from './gateway.js';
import { startGateway } from './run.js';

const USAGE = `usage: natter-gateway-mqtt [--config FILE | FILE]

Environment (overrides the file):
${Object.entries(ENV_VARS)
  .map(([k, v]) => `  ${k.padEnd(28)} ${v}`)
  .join('\n')}
  NATTER_MQTT_LOG_LEVEL        debug | info | warn | error (default info)`;

const LEVELS = ['debug', 'info', 'warn', 'error'] as const;

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    options: { config: { type: 'string', short: 'c' }, help: { type: 'boolean', short: 'h' } },
    allowPositionals: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const min = LEVELS.indexOf((process.env.NATTER_MQTT_LOG_LEVEL ?? 'info') as (typeof LEVELS)[number]);
  const log: Log = (level, message, data) => {
    if (LEVELS.indexOf(level) < (min < 0 ? 1 : min)) return;
    process.stderr.write(JSON.stringify({ time: new Date().toISOString(), level, message, ...data }) + '\n');
  };
  let config;
  try {
    config = await loadConfig(values.config ?? positionals[0]);
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`natter-gateway-mqtt: ${err.message}\n\n${USAGE}`);
      return 2;
    }
    throw err;
  }
  const running = await startGateway(config, { log });
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  log('info', 'stopping');
  await running.stop();
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(`natter-gateway-mqtt: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
