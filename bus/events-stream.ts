import { jetstream, jetstreamManager, DiscardPolicy, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { nanos } from '@nats-io/nats-core';
import type { Bus, Received } from './bus.ts';
import { subjects, type MessageOf, type MessageType } from '../schemas/index.ts';

/** The JetStream stream that keeps events so a late subscriber can replay them. */
export const EVENTS_STREAM = 'COLO_EVENTS';

/**
 * Creates the events stream when the server has JetStream and the stream is missing (a day of events, at
 * most 256 MiB, oldest dropped first). Returns false, with the reason, when JetStream is unavailable: events
 * still flow on core NATS then, only replay is lost.
 */
export async function ensureEventsStream(bus: Bus): Promise<{ ok: boolean; reason?: string }> {
  try {
    const jsm = await jetstreamManager(bus.nc, { timeout: 2000 });
    try {
      await jsm.streams.info(EVENTS_STREAM);
      return { ok: true };
    } catch {
      // not there yet: create it (another host may win the race; that is fine)
    }
    const config = {
      name: EVENTS_STREAM,
      subjects: [subjects.allEvents()],
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.Old,
      max_age: nanos(24 * 3600 * 1000),
      max_bytes: 256 * 1024 * 1024,
    };
    try {
      // In a cluster, three copies so the stream outlives a node; a single server keeps one.
      try {
        await jsm.streams.add({ ...config, num_replicas: clusterReplicas(bus) });
      } catch (err) {
        if (clusterReplicas(bus) === 1) throw err;
        await jsm.streams.add(config);
      }
    } catch (err) {
      await jsm.streams.info(EVENTS_STREAM).catch(() => { throw err; });
    }
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/** Copies of a JetStream stream to ask for: 3 when the server is part of a cluster, else 1. */
export function clusterReplicas(bus: Bus): number {
  return bus.nc.info?.cluster ? 3 : 1;
}

/** Replays the stored events from the start, through the bus edge (invalid ones are dropped and counted). */
export async function replayEvents(
  bus: Bus,
  onEvent: (r: Received<MessageOf<MessageType>>) => boolean | void,
  options: { idleMs?: number } = {},
): Promise<number> {
  const js = jetstream(bus.nc);
  const consumer = await js.consumers.get(EVENTS_STREAM);
  const idleMs = options.idleMs ?? 500;
  let n = 0;
  const messages = await consumer.consume({ idle_heartbeat: idleMs });
  const info = await consumer.info(true);
  let pending = info.num_pending;
  if (pending === 0) {
    await messages.close();
    return 0;
  }
  for await (const m of messages) {
    pending = m.info.pending;
    const r = bus.admitMessage(m.subject, m.data, m.headers);
    if (r) {
      n++;
      if (onEvent(r as Received<MessageOf<MessageType>>) === false) break;
    }
    if (pending === 0) break;
  }
  await messages.close();
  return n;
}
