/**
 * FIFO of waiting inference requests as parallel typed arrays in a ring: no object per request, so a
 * long overload costs memory only in proportion to the backlog, and never beyond `capacity`.
 */
export class RequestQueue {
  private arrivalMs: Float64Array;
  private workMs: Float64Array;
  private serviceIndex: Int32Array;
  /** 1 for a tail batch (see the profile's interference.tailProb). */
  private tail: Uint8Array;
  private head = 0;
  private size = 0;

  constructor(readonly capacity: number, initialSlots = 64) {
    const slots = Math.max(1, Math.min(capacity, initialSlots));
    this.arrivalMs = new Float64Array(slots);
    this.workMs = new Float64Array(slots);
    this.serviceIndex = new Int32Array(slots);
    this.tail = new Uint8Array(slots);
  }

  /** Requests waiting. */
  get length(): number {
    return this.size;
  }

  /** Append a request; false (and nothing stored) when the queue is at capacity. */
  push(arrivalMs: number, serviceIndex: number, workMs: number, tail = false): boolean {
    if (this.size >= this.capacity) return false;
    if (this.size === this.arrivalMs.length) this.grow();
    const slot = (this.head + this.size) % this.arrivalMs.length;
    this.arrivalMs[slot] = arrivalMs;
    this.workMs[slot] = workMs;
    this.serviceIndex[slot] = serviceIndex;
    this.tail[slot] = tail ? 1 : 0;
    this.size++;
    return true;
  }

  /** Arrival time of the oldest request (call only when length > 0). */
  frontArrivalMs(): number {
    return this.arrivalMs[this.head]!;
  }

  /** Work of the oldest request in ms at full speed (call only when length > 0). */
  frontWorkMs(): number {
    return this.workMs[this.head]!;
  }

  /** Service index of the oldest request (call only when length > 0). */
  frontServiceIndex(): number {
    return this.serviceIndex[this.head]!;
  }

  /** Whether the oldest request is a tail batch (call only when length > 0). */
  frontTail(): boolean {
    return this.tail[this.head] === 1;
  }

  /** Drop the oldest request. */
  shift(): void {
    if (this.size === 0) return;
    this.head = (this.head + 1) % this.arrivalMs.length;
    this.size--;
  }

  private grow(): void {
    const slots = Math.min(this.capacity, this.arrivalMs.length * 2);
    const arrivalMs = new Float64Array(slots);
    const workMs = new Float64Array(slots);
    const serviceIndex = new Int32Array(slots);
    const tail = new Uint8Array(slots);
    for (let i = 0; i < this.size; i++) {
      const from = (this.head + i) % this.arrivalMs.length;
      arrivalMs[i] = this.arrivalMs[from]!;
      workMs[i] = this.workMs[from]!;
      serviceIndex[i] = this.serviceIndex[from]!;
      tail[i] = this.tail[from]!;
    }
    this.arrivalMs = arrivalMs;
    this.workMs = workMs;
    this.serviceIndex = serviceIndex;
    this.tail = tail;
    this.head = 0;
  }
}
