import { accessSync, constants, readFileSync } from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, type ConnectionOptions } from '@nats-io/nats-core';

/**
 * How a process proves who it is to NATS, and how it checks the server: the standard NATS options
 * (a creds file, an nkey seed, user and password, or a token; TLS with a CA, and a client certificate).
 * Access control itself is the server's: accounts and per-user subject permissions (deploy/nats/).
 */
export interface BusAuth {
  /** A `.creds` file (user JWT and nkey seed), as `nsc` writes it. */
  credsFile?: string;
  /** A file holding an nkey seed (`SU...`) for a user that the server lists by public nkey. */
  nkeySeedFile?: string;
  user?: string;
  password?: string;
  token?: string;
  /** CA bundle to verify the server's certificate (otherwise the system's CAs). */
  tlsCaFile?: string;
  /** Client certificate and key, for servers that verify clients (`verify: true`). */
  tlsCertFile?: string;
  tlsKeyFile?: string;
}

/** The environment variable of each setting (the NATS CLI's names where it has one). */
export const AUTH_ENV: Readonly<Record<keyof BusAuth, string>> = {
  credsFile: 'NATS_CREDS',
  nkeySeedFile: 'NATS_NKEY',
  user: 'NATS_USER',
  password: 'NATS_PASSWORD',
  token: 'NATS_TOKEN',
  tlsCaFile: 'NATS_TLS_CA',
  tlsCertFile: 'NATS_TLS_CERT',
  tlsKeyFile: 'NATS_TLS_KEY',
};

/** A setting that cannot work (a missing file, a user without a password, two identities): fix it and retry. */
export class BusAuthError extends Error {
  override name = 'BusAuthError';
}

/** Reads the settings from the environment (empty variables count as unset). */
export function authFromEnv(env: NodeJS.ProcessEnv = process.env): BusAuth {
  const auth: BusAuth = {};
  for (const [key, name] of Object.entries(AUTH_ENV) as Array<[keyof BusAuth, string]>) {
    const value = env[name];
    if (value) auth[key] = value;
  }
  return auth;
}

/** True when any setting is given. */
export function hasAuth(auth: BusAuth): boolean {
  return Object.values(auth).some((v) => v !== undefined && v !== '');
}

function readable(file: string, what: string, variable: string): void {
  try {
    accessSync(file, constants.R_OK);
  } catch (err) {
    throw new BusAuthError(`${what} ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): check the path given by ${variable} or its flag`, { cause: err });
  }
}

/**
 * The connection options for a set of settings, checked first: one identity at most, a user needs a
 * password, a client certificate needs its key, every file readable.
 */
export function connectionAuth(auth: BusAuth): Partial<ConnectionOptions> {
  const identities = [auth.credsFile && 'creds', auth.nkeySeedFile && 'nkey', auth.user && 'user', auth.token && 'token'].filter(Boolean);
  if (identities.length > 1) throw new BusAuthError(`give one NATS identity, not ${identities.join(' and ')} (${AUTH_ENV.credsFile}, ${AUTH_ENV.nkeySeedFile}, ${AUTH_ENV.user}, ${AUTH_ENV.token})`);
  if (auth.password && !auth.user) throw new BusAuthError(`a NATS password needs a user (${AUTH_ENV.user} or --user)`);
  if (auth.user && !auth.password) throw new BusAuthError(`NATS user ${JSON.stringify(auth.user)} needs a password (${AUTH_ENV.password}; the flag --password shows it to other users of this machine)`);
  if (Boolean(auth.tlsCertFile) !== Boolean(auth.tlsKeyFile)) throw new BusAuthError(`a TLS client certificate needs its key and the key its certificate (${AUTH_ENV.tlsCertFile} and ${AUTH_ENV.tlsKeyFile})`);
  const out: Partial<ConnectionOptions> = {};
  if (auth.credsFile) {
    readable(auth.credsFile, 'NATS creds file', AUTH_ENV.credsFile);
    const creds = readFileSync(auth.credsFile);
    out.authenticator = credsAuthenticator(new Uint8Array(creds));
  } else if (auth.nkeySeedFile) {
    readable(auth.nkeySeedFile, 'NATS nkey seed file', AUTH_ENV.nkeySeedFile);
    const seed = readFileSync(auth.nkeySeedFile, 'utf8').trim();
    if (!/^SU[A-Z2-7]{50,}$/.test(seed)) throw new BusAuthError(`${auth.nkeySeedFile} does not hold a user nkey seed (a line starting with SU)`);
    out.authenticator = nkeyAuthenticator(new TextEncoder().encode(seed));
  } else if (auth.user) {
    out.user = auth.user;
    out.pass = auth.password!;
  } else if (auth.token) {
    out.token = auth.token;
  }
  if (auth.tlsCaFile || auth.tlsCertFile) {
    const tls: NonNullable<ConnectionOptions['tls']> = {};
    if (auth.tlsCaFile) { readable(auth.tlsCaFile, 'TLS CA file', AUTH_ENV.tlsCaFile); tls.caFile = auth.tlsCaFile; }
    if (auth.tlsCertFile) { readable(auth.tlsCertFile, 'TLS certificate file', AUTH_ENV.tlsCertFile); tls.certFile = auth.tlsCertFile; }
    if (auth.tlsKeyFile) { readable(auth.tlsKeyFile, 'TLS key file', AUTH_ENV.tlsKeyFile); tls.keyFile = auth.tlsKeyFile; }
    out.tls = tls;
  }
  return out;
}

/** What a log line may say about the settings: the identity's kind and name, never a secret. */
export function describeAuth(auth: BusAuth): string {
  const who = auth.credsFile ? `creds ${auth.credsFile}` : auth.nkeySeedFile ? `nkey seed ${auth.nkeySeedFile}`
    : auth.user ? `user ${auth.user}` : auth.token ? 'token' : 'no credentials';
  const tls = auth.tlsCaFile || auth.tlsCertFile ? `, TLS${auth.tlsCertFile ? ' with client certificate' : ''}` : '';
  return `${who}${tls}`;
}
