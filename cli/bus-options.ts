import type { Command } from 'commander';
import { AUTH_ENV } from '../bus/auth/index.ts';

/** The flag of each NATS connection setting and the environment variable it sets. */
const FLAGS: ReadonlyArray<{ flag: string; key: string; env: string; help: string }> = [
  { flag: '--nats-url <url>', key: 'natsUrl', env: 'NATS_URL', help: 'NATS server(s), comma-separated (default NATS_URL; none: a private nats-server)' },
  { flag: '--creds <file>', key: 'creds', env: AUTH_ENV.credsFile, help: 'NATS user credentials file (.creds)' },
  { flag: '--nkey <file>', key: 'nkey', env: AUTH_ENV.nkeySeedFile, help: 'file holding a NATS user nkey seed' },
  { flag: '--user <name>', key: 'user', env: AUTH_ENV.user, help: `NATS user (password from ${AUTH_ENV.password})` },
  { flag: '--password <secret>', key: 'password', env: AUTH_ENV.password, help: `NATS password (prefer ${AUTH_ENV.password}: flags are visible to other users)` },
  { flag: '--tls-ca <file>', key: 'tlsCa', env: AUTH_ENV.tlsCaFile, help: 'CA bundle that signed the NATS server certificate' },
  { flag: '--tls-cert <file>', key: 'tlsCert', env: AUTH_ENV.tlsCertFile, help: 'TLS client certificate (with --tls-key)' },
  { flag: '--tls-key <file>', key: 'tlsKey', env: AUTH_ENV.tlsKeyFile, help: 'TLS client key' },
];

/** Adds the NATS connection flags (URL, credentials, TLS) to a command that connects to the bus. */
export function withBusOptions(cmd: Command): Command {
  for (const f of FLAGS) cmd.option(f.flag, `${f.help} [env ${f.env}]`);
  return cmd;
}

/**
 * Moves the connection flags a command was given into the environment, so every connection the command
 * makes (and every process it starts, like the demo's host runners) uses them; a flag beats its variable.
 */
export function applyBusOptions(opts: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env): void {
  for (const f of FLAGS) {
    const value = opts[f.key];
    if (typeof value === 'string' && value !== '') env[f.env] = value;
  }
}
