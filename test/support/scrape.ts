// Scraping a gateway's /__metrics__ in tests: the text is parsed by a Prometheus text-format
// parser (not by our own reading of it), then samples are picked by name and labels.
// parse-prometheus-text-format folds a histogram's labelled series into one (it keeps only
// the buckets of the last), so histogram counts are read from a second parse in which the
// histograms are declared untyped: each `_count` line is then a sample of its own.
import assert from 'node:assert/strict';
import parse, { type Family } from 'parse-prometheus-text-format';

export class Scrape {
  private readonly untyped: Family[];

  constructor(readonly text: string) {
    this.families = parse(text);
    this.untyped = parse(text.replace(/^# TYPE (\S+) histogram$/gm, '# TYPE $1 untyped'));
  }

  readonly families: Family[];

  family(name: string): Family | undefined {
    return this.families.find((f) => f.name === name);
  }

  /** The sum of the samples of `name` whose labels include `labels` (0 when none). */
  value(name: string, labels: Record<string, string> = {}): number {
    return this.matching(name, labels).reduce((s, m) => s + Number(m.value), 0);
  }

  /** The sum of the observation counts of histogram `name` whose labels include `labels`. */
  count(name: string, labels: Record<string, string> = {}): number {
    assert.equal(this.family(name)?.type, 'HISTOGRAM', `${name} is a histogram`);
    return this.matching(`${name}_count`, labels, this.untyped).reduce((s, m) => s + Number(m.value), 0);
  }

  private matching(name: string, labels: Record<string, string>, families = this.families) {
    // The untyped parse starts a family at each change of name: one name, several families.
    return families.filter((f) => f.name === name).flatMap((f) => f.metrics.filter((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)));
  }
}

export async function scrape(base: string, bearer: string): Promise<Scrape> {
  const res = await fetch(`${base}/__metrics__`, { headers: { Authorization: `Bearer ${bearer}` } });
  const text = await res.text();
  assert.equal(res.status, 200, text);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  return new Scrape(text);
}
