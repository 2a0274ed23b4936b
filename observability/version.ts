import { createRequire } from 'node:module';

/** The package version (`service.version`, the meter's and tracer's version): read from package.json once. */
export const GPUCOLO_VERSION: string = (createRequire(import.meta.url)('../package.json') as { version: string }).version;
