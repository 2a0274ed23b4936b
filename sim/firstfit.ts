/**
 * First fit in O(log n): a segment tree over GPU slots keeping, per subtree, the largest free capacity on
 * three axes (a: compute, in whatever units the caller keys it; b: memory; c: a third room, +Infinity when
 * unused). `find` returns the lowest slot whose own a, b and c cover the need and that passes an optional
 * exact check, pruning every subtree whose maxima cannot. The same answer as scanning the slots in order,
 * without visiting the full ones.
 */
export class FirstFit {
  private size = 1;
  private a = new Float64Array(2).fill(-Infinity);
  private b = new Float64Array(2).fill(-Infinity);
  private c = new Float64Array(2).fill(-Infinity);

  constructor(n = 1024) { this.ensure(n); }

  private ensure(n: number): void {
    if (n <= this.size) return;
    let size = this.size;
    while (size < n) size *= 2;
    const a = new Float64Array(2 * size).fill(-Infinity), b = new Float64Array(2 * size).fill(-Infinity), c = new Float64Array(2 * size).fill(-Infinity);
    a.set(this.a.subarray(this.size, 2 * this.size), size);
    b.set(this.b.subarray(this.size, 2 * this.size), size);
    c.set(this.c.subarray(this.size, 2 * this.size), size);
    this.size = size; this.a = a; this.b = b; this.c = c;
    this.up();
  }

  private up(): void {
    const { a, b, c } = this;
    for (let k = this.size - 1; k >= 1; k--) {
      a[k] = Math.max(a[2 * k]!, a[2 * k + 1]!); b[k] = Math.max(b[2 * k]!, b[2 * k + 1]!); c[k] = Math.max(c[2 * k]!, c[2 * k + 1]!);
    }
  }

  /** Sets slot i's free capacity (-Infinity: never a candidate; +Infinity: takes anything). */
  set(i: number, a: number, b: number, c = Infinity): void {
    this.ensure(i + 1);
    const { a: A, b: B, c: C } = this;
    let k = i + this.size;
    A[k] = a; B[k] = b; C[k] = c;
    for (k >>= 1; k >= 1; k >>= 1) {
      const na = Math.max(A[2 * k]!, A[2 * k + 1]!), nb = Math.max(B[2 * k]!, B[2 * k + 1]!), nc = Math.max(C[2 * k]!, C[2 * k + 1]!);
      if (A[k] === na && B[k] === nb && C[k] === nc) break;
      A[k] = na; B[k] = nb; C[k] = nc;
    }
  }

  /** Sets slots 0..n-1 from `key` (writing a, b, c into out[0..2]; c defaults to +Infinity) and rebuilds in O(size). */
  rebuild(n: number, key: (i: number, out: Float64Array) => void): void {
    this.ensure(n);
    const { a: A, b: B, c: C, size } = this;
    const out = new Float64Array(3);
    for (let i = 0; i < n; i++) { out[2] = Infinity; key(i, out); A[size + i] = out[0]!; B[size + i] = out[1]!; C[size + i] = out[2]!; }
    this.up();
  }

  /** Lowest slot with a >= needA, b >= needB, c >= needC and check(slot) true; -1 when none. */
  find(needA: number, needB: number, check?: (i: number) => boolean, needC = -Infinity): number {
    return this.walk(1, needA, needB, needC, check);
  }

  private walk(k: number, needA: number, needB: number, needC: number, check?: (i: number) => boolean): number {
    if (this.a[k]! < needA || this.b[k]! < needB || this.c[k]! < needC) return -1;
    if (k >= this.size) { const i = k - this.size; return !check || check(i) ? i : -1; }
    const l = this.walk(2 * k, needA, needB, needC, check);
    return l >= 0 ? l : this.walk(2 * k + 1, needA, needB, needC, check);
  }
}
