import type { Bus } from '../bus/index.ts';
import { parseHealthPort } from '../observability/index.ts';
import { UsageError } from './errors.ts';

/** `--health-port PORT|HOST:PORT`, as a usage error when malformed. */
export function healthPortFlag(raw: string): { host?: string; port: number } {
  try {
    return parseHealthPort(raw);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Readiness of the bus: open and answering a ping (a round trip to the NATS server) within the check's deadline. */
export async function natsReadiness(bus: Bus): Promise<string | undefined> {
  if (bus.nc.isClosed()) return 'NATS connection closed';
  try {
    await bus.nc.rtt();
    return undefined;
  } catch (err) {
    return `no round trip to the NATS server: ${(err as Error).message}`;
  }
}
