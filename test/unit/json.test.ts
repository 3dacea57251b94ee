import assert from 'node:assert/strict';
import { seconds, toJson } from '../../common/json.js';
import { formatSeconds, parseSeconds, quantize } from '../../common/timestamps.js';

describe('JSON with two-decimal timestamps (common/json.ts, common/timestamps.ts)', () => {
  describe('toJson', () => {
    it('writes a Seconds value with exactly two decimals', () => {
      assert.equal(toJson(seconds(1700000000500)), '1700000000.50');
      assert.equal(toJson(seconds(1700000000000)), '1700000000.00');
      assert.equal(toJson(seconds(1700000000120)), '1700000000.12');
      assert.equal(toJson(seconds(1700000000070)), '1700000000.07');
      assert.equal(toJson(seconds(0)), '0.00');
      assert.equal(toJson(seconds(10)), '0.01');
    });

    it('writes timestamps inside nested objects and arrays with two decimals, as valid JSON', () => {
      const value = {
        modified: seconds(1700000000500),
        success: ['a', 'b'],
        failed: { c: ['invalid id'] },
        items: [{ id: 'x', modified: seconds(0), sortindex: 5 }, [seconds(1388635807410)]],
        flag: true,
        none: null,
      };
      const text = toJson(value);
      assert.equal(
        text,
        '{"modified":1700000000.50,"success":["a","b"],"failed":{"c":["invalid id"]},' +
          '"items":[{"id":"x","modified":0.00,"sortindex":5},[1388635807.41]],"flag":true,"none":null}',
      );
      assert.match(text, /['"]modified['"]:\s*[0-9]+\.[0-9][0-9]\s*[,}]/); // test_meta_global_sanity
      assert.deepEqual(JSON.parse(text), {
        modified: 1700000000.5,
        success: ['a', 'b'],
        failed: { c: ['invalid id'] },
        items: [{ id: 'x', modified: 0, sortindex: 5 }, [1388635807.41]],
        flag: true,
        none: null,
      });
    });

    it('skips keys whose value is undefined', () => {
      assert.equal(toJson({ id: 'a', sortindex: undefined, payload: 'p' }), '{"id":"a","payload":"p"}');
      assert.equal(toJson({ a: undefined }), '{}');
    });

    it('escapes strings and keys like JSON.stringify', () => {
      const value = { 'we"ird\nkey': 'line\n"quote" \u2028 \\ é', n: 1.5, arr: [] };
      assert.equal(toJson(value), JSON.stringify(value));
      assert.deepEqual(JSON.parse(toJson(value)), value);
    });
  });

  describe('formatSeconds', () => {
    it('truncates to 10 ms and writes two decimals', () => {
      assert.equal(formatSeconds(1700000000509), '1700000000.50');
      assert.equal(formatSeconds(5), '0.00');
      assert.equal(quantize(1700000000509), 1700000000500);
    });
  });

  describe('parseSeconds', () => {
    it('accepts decimals with any number of digits and returns 10 ms multiples', () => {
      assert.equal(parseSeconds('1.5'), 1500);
      assert.equal(parseSeconds('10'), 10000);
      assert.equal(parseSeconds('0'), 0);
      assert.equal(parseSeconds('0.00'), 0);
      assert.equal(parseSeconds('1700000000.12'), 1700000000120);
      assert.equal(parseSeconds('1700000000.50'), 1700000000500);
      assert.equal(parseSeconds('1388635807.41'), 1388635807410);
      assert.equal(parseSeconds('1700000000.129'), 1700000000120);
      assert.equal(parseSeconds('1700000000.1'), 1700000000100);
    });

    it('round-trips every two-decimal value it formats', () => {
      for (const ms of [0, 10, 990, 1388635807410, 1700000000070, 1700000000500, 1999999999990]) {
        assert.equal(parseSeconds(formatSeconds(ms)), ms);
      }
    });

    it('rejects negative and non-numeric values (spec 1.5: 400)', () => {
      for (const v of ['-1', '-0.01', 'abc', '', ' ', 'NaN', 'Infinity', '1.2.3', '0x10', '1,5', '12abc', '+-1']) {
        assert.equal(parseSeconds(v), undefined, JSON.stringify(v));
      }
    });

    it('rejects exponent notation (the code accepts plain decimals only)', () => {
      assert.equal(parseSeconds('1e5'), undefined);
      assert.equal(parseSeconds('1E5'), undefined);
    });
  });
});
