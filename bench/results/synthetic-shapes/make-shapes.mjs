// Writes the four synthetic load shapes here: `node make-shapes.mjs` (rates in req/s; the bench rescales each
// curve to its mean, 150 req/s, as for any --load file).
import { writeFileSync } from 'node:fs';

const write = (name, rows) =>
  writeFileSync(new URL(name, import.meta.url), `t_s,rate_rps\n${rows.map(([t, r]) => `${t},${r.toFixed(4)}\n`).join('')}`);
const range = (from, to, step) => Array.from({ length: Math.floor((to - from) / step) + 1 }, (_, i) => from + i * step);

// A steady rise, 60 -> 240 req/s over 20 minutes, in 10 s steps.
write('ramp.csv', range(0, 1200, 10).map((t) => [t, 60 + (180 * t) / 1200]));
// Square: 90 and 210 req/s, two minutes each.
write('square.csv', range(0, 1200, 120).map((t) => [t, Math.floor(t / 120) % 2 === 0 ? 90 : 210]));
// Spikes: 120 req/s with 30 s at 270 every five minutes.
write('spikes.csv', [...range(0, 900, 300).flatMap((p) => [[p, 120], [p + 150, 270], [p + 180, 120]]), [1200, 120]]);
// Sine: 150 +- 90 req/s, a ten-minute period.
write('sine.csv', range(0, 1200, 10).map((t) => [t, 150 + 90 * Math.sin((2 * Math.PI * t) / 600)]));
