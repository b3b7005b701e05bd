/** The RFC 4180 CSV reader behind `lwbs device import`. */
import { expect } from 'chai';
import fc from 'fast-check';
import { CsvError, csvLine, parseCsv } from '../../src/cli/csv.js';

const fields = (text: string): string[][] => parseCsv(text).map((r) => [...r.fields]);
const lines = (text: string): number[] => parseCsv(text).map((r) => r.line);

function csvError(text: string): CsvError {
  try {
    parseCsv(text);
  } catch (e) {
    expect(e).to.be.instanceOf(CsvError);
    return e as CsvError;
  }
  expect.fail(`expected a CsvError for ${JSON.stringify(text)}`);
}

describe('cli/csv', () => {
  it('splits records and fields, with or without a final line break', () => {
    expect(fields('a,b,c\n1,2,3\n')).to.deep.equal([
      ['a', 'b', 'c'],
      ['1', '2', '3'],
    ]);
    expect(fields('a,b\n1,2')).to.deep.equal([
      ['a', 'b'],
      ['1', '2'],
    ]);
    expect(fields('')).to.deep.equal([]);
  });

  it('keeps empty fields, also leading and trailing ones', () => {
    expect(fields(',a,,b,\n')).to.deep.equal([['', 'a', '', 'b', '']]);
    expect(fields('x,\ny,')).to.deep.equal([
      ['x', ''],
      ['y', ''],
    ]);
  });

  it('reads quoted fields holding separators, line breaks and escaped quotes', () => {
    expect(fields('"a,b","say ""hi""",""\n')).to.deep.equal([['a,b', 'say "hi"', '']]);
    expect(fields('"line1\nline2",x\r\n')).to.deep.equal([['line1\nline2', 'x']]);
    expect(fields('"""",""""""')).to.deep.equal([['"', '""']]);
    expect(fields('"-----BEGIN X-----\r\nAAAA\r\n-----END X-----",y')).to.deep.equal([['-----BEGIN X-----\r\nAAAA\r\n-----END X-----', 'y']]);
  });

  it('accepts CRLF, LF and lone CR line endings', () => {
    const want = [
      ['a', 'b'],
      ['1', '2'],
      ['3', '4'],
    ];
    expect(fields('a,b\r\n1,2\r\n3,4\r\n')).to.deep.equal(want);
    expect(fields('a,b\n1,2\n3,4\n')).to.deep.equal(want);
    expect(fields('a,b\r1,2\r3,4')).to.deep.equal(want);
    expect(fields('a,b\r\n1,2\n3,4\r')).to.deep.equal(want);
  });

  it('drops a UTF-8 byte order mark at the start only', () => {
    expect(fields('\ufeffendpoint,profile\nx,y')).to.deep.equal([
      ['endpoint', 'profile'],
      ['x', 'y'],
    ]);
    expect(fields('a\n\ufeffb')).to.deep.equal([['a'], ['\ufeffb']]);
  });

  it('skips empty lines anywhere and still counts them for line numbers', () => {
    const text = '\r\n\na,b\r\n\r\n1,2\n\n\n3,4\n\n';
    expect(fields(text)).to.deep.equal([
      ['a', 'b'],
      ['1', '2'],
      ['3', '4'],
    ]);
    expect(lines(text)).to.deep.equal([3, 5, 8]);
  });

  it('numbers a record by the line it starts on, across quoted line breaks', () => {
    const text = 'h1,h2\n"a\nb\r\nc",x\n"d\re",y\nlast,z';
    expect(lines(text)).to.deep.equal([1, 2, 5, 7]);
    expect(fields(text)[3]).to.deep.equal(['last', 'z']);
  });

  it('refuses an unterminated quoted field, naming the line where it opened', () => {
    const e = csvError('a,b\n1,"two\nthree\n');
    expect([e.line, e.column]).to.deep.equal([2, 2]);
    expect(e.message).to.match(/^line 2, column 2: .*not closed/);
  });

  it('refuses a quote inside an unquoted field', () => {
    const e = csvError('a,b\nx,y"z\n');
    expect([e.line, e.column]).to.deep.equal([2, 2]);
    expect(e.reason).to.match(/quote inside an unquoted field/);
  });

  it('refuses text after a closing quote', () => {
    const e = csvError('a\n\n"ab"c,d\n');
    expect([e.line, e.column]).to.deep.equal([3, 1]);
    expect(e.reason).to.match(/after a closing quote/);
    expect(csvError('x,"a\nb" ,y').line).to.equal(2);
  });

  it('reads back whatever csvLine writes (property)', () => {
    const cell = fc.string({ unit: fc.constantFrom('a', 'z', ' ', ',', '"', '\r', '\n', 'é', '0') });
    // A record of one empty field is written as an empty line, which the reader skips by design.
    const record = fc.array(cell, { minLength: 1, maxLength: 5 }).filter((r) => !(r.length === 1 && r[0] === ''));
    fc.assert(
      fc.property(fc.array(record, { maxLength: 8 }), fc.constantFrom('\n', '\r\n'), (records, eol) => {
        const text = records.map(csvLine).join(eol) + eol;
        const parsed = parseCsv(text);
        expect(parsed.map((r) => r.fields)).to.deep.equal(records);
        // Each record starts one line after the previous record's last line break.
        let line = 1;
        parsed.forEach((r, i) => {
          expect(r.line).to.equal(line);
          line += (csvLine(records[i]!) + eol).match(/\r\n|\r|\n/g)!.length;
        });
      }),
      { numRuns: 300 },
    );
  });
});
