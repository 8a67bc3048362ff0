// A log-bucket latency histogram in the spirit of HDR: values (ms) land in buckets whose width
// is 1 % of their value, from 1 µs up; percentiles are reported as the bucket's upper bound, so
// they are at most 1 % high. Constant memory, O(1) record.
const MIN_MS = 0.001;
const GROWTH = Math.log(1.01);

export class Histogram {
  constructor() {
    this.counts = new Float64Array(2048); // 1.01^2048 µs ≈ 7e8 s: more than enough
    this.total = 0;
    this.sum = 0;
    this.max = 0;
  }

  /** Records one value in ms. */
  record(ms) {
    const i = ms <= MIN_MS ? 0 : Math.min(2047, Math.ceil(Math.log(ms / MIN_MS) / GROWTH));
    this.counts[i]++;
    this.total++;
    this.sum += ms;
    if (ms > this.max) this.max = ms;
  }

  /** The value (ms) at or below which `p` % of the values lie (bucket upper bound). */
  percentile(p) {
    if (this.total === 0) return null;
    const rank = Math.ceil((p / 100) * this.total);
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(this.max, MIN_MS * Math.exp(i * GROWTH));
    }
    return this.max;
  }

  mean() {
    return this.total === 0 ? null : this.sum / this.total;
  }
}
