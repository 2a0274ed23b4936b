// bus/auth/: how a process proves who it is to NATS and checks the server (creds, nkey, user/password, token,
// TLS), and the environment variables that carry those settings. A folder of its own so that the CLI can name
// the connection flags' variables (cli/bus-options.ts) without loading the bus itself (the NATS client,
// JetStream, KV, the schemas): `gpucolo --help` stays fast.
export * from './auth.ts';
