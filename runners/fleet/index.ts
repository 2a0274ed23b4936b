// fleet/: the fleet runtime: the fleet actor's process (fleet.ts: status in, plans out as placement commands)
// and its leader lease in JetStream KV (fleet-lease.ts). What other folders may import.
export * from './fleet.ts';
export * from './fleet-lease.ts';
