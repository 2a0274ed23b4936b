import { Bus, EVENTS_STREAM, replayEvents } from '../bus/index.ts';
import { subjectMatches, subjects, type MessageOf, type MessageType } from '../schemas/index.ts';
import { numberFlag } from './errors.ts';

/** One readable line for an event. */
export function describeEvent(subject: string, m: MessageOf<MessageType>): string {
  const t = new Date(('unixMs' in m ? m.unixMs : Date.now()) as number).toISOString().slice(11, 23);
  switch (m.type) {
    case 'gpu.status': {
      const s = m.services.map((x) => `${x.serviceId} p99 ${x.p99Ms.toFixed(1)}/${x.sloMs}ms`).join(' ');
      const tr = m.trainings.map((x) => `${x.jobId} ${x.itersPerSec.toFixed(2)} it/s`).join(' ');
      const sleep = m.pacing.mode === 'duty' ? `duty ${m.pacing.duty.toFixed(2)}` : `sleep ${m.pacing.sleepMs.toFixed(0)}ms/iter`;
      return `${t} ${m.host}/${m.gpu} status ${m.state}: ${s}; ${tr}; ${sleep}, mps ${m.mpsSharePct}%`;
    }
    case 'gpu.decision':
      return `${t} ${m.host}/${m.gpu} ${m.tier} ${m.knob} ${fmt(m.oldValue)} -> ${fmt(m.newValue)}: ${m.reason}`;
    case 'gpu.safety':
      return `${t} ${m.host}/${m.gpu} SAFETY ${m.condition}: ${m.detail}`;
    case 'bus.rejected':
      return `${t} ${m.host} REJECTED ${m.reason} on ${m.subject} (${m.bytes} B): ${m.detail} [total ${m.rejectedTotal}]`;
    case 'host.lifecycle':
      return `${t} ${m.host} host ${m.state} (${m.gpus.length} GPUs, ${m.backend}, pid ${m.pid})`;
    default:
      return `${t} ${subject} ${m.type}`;
  }
}

function fmt(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(3);
}

/**
 * `gpucolo events`: prints every event on the bus as it comes, until SIGINT, --count or --duration; with
 * `--replay`, prints the events the JetStream stream holds, from the oldest, and exits.
 */
export async function eventsCommand(f: { json?: boolean; subject?: string; count?: string; duration?: string; replay?: boolean }): Promise<void> {
  const count = f.count !== undefined ? numberFlag('--count', f.count, { min: 1, integer: true }) : Infinity;
  const durationS = f.duration !== undefined ? numberFlag('--duration', f.duration, { min: 0 }) : undefined;
  // Replies (JetStream's, for --replay) under the observer's inbox, as deploy/nats permits a watcher.
  const bus = await Bus.connect({ name: 'gpucolo-events', host: `events-${process.pid}`, inboxPrefix: process.env.NATS_INBOX_PREFIX ?? '_INBOX.observer' });
  if (bus.embedded) process.stderr.write(`no NATS_URL: listening on a private server ${bus.url} (set NATS_URL to watch a running cluster)\n`);
  let seen = 0;
  // A reader that stops reading (`| head -1`) closes the pipe: that ends the command quietly, as it ends
  // any Unix filter, instead of an unhandled EPIPE.
  let readerGone = false;
  let onReaderGone = () => {};
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    readerGone = true;
    onReaderGone();
  };
  process.stdout.on('error', onStdoutError);
  const print = (subject: string, message: MessageOf<MessageType>) => {
    if (readerGone) return;
    process.stdout.write(f.json ? `${JSON.stringify({ subject, ...message })}\n` : `${describeEvent(subject, message)}\n`);
  };
  if (f.replay) {
    try {
      await replayEvents(bus, ({ subject, message }) => {
        if (readerGone) return false;
        if (f.subject && !subjectMatches(f.subject, subject)) return true;
        print(subject, message);
        return ++seen < count && !readerGone;
      });
    } catch (err) {
      await bus.close();
      throw new Error(`cannot replay events from JetStream stream ${EVENTS_STREAM}: ${(err as Error).message} (is a host runner using this server, with JetStream on?)`);
    }
    await bus.close();
    return;
  }
  await new Promise<void>((resolve) => {
    bus.subscribe(f.subject ?? subjects.allEvents(), ({ subject, message }) => {
      seen++;
      print(subject, message);
      if (seen >= count) resolve();
    });
    onReaderGone = resolve;
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
    if (durationS !== undefined) setTimeout(resolve, durationS * 1000);
  });
  await bus.close();
}
