/** The bus could not be reached or started; retrying after fixing NATS_URL or installing nats-server helps. */
export class BusUnavailableError extends Error {
  override name = 'BusUnavailableError';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** A command got no reply in time, or was refused by its receiver. */
export class CommandError extends Error {
  override name = 'CommandError';
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Nobody serves the command's subject now (the server's 503): the receiver is gone or has moved. */
export class NoRespondersError extends CommandError {
  override name = 'NoRespondersError';
  constructor(subject: string) {
    super(`command to ${subject}: no responders (nobody serves that subject now)`, true);
  }
}

/** An outgoing message failed its own schema: a bug on our side, never sent. */
export class OutgoingSchemaError extends Error {
  override name = 'OutgoingSchemaError';
}
