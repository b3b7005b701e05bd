/**
 * A small RFC 4180 CSV reader for `lwbs device import`.
 *
 * - Fields are separated by `,`; records end with CRLF, LF or a lone CR (all three are accepted,
 *   spreadsheets on every platform write one of them).
 * - A field may be quoted with `"`; inside quotes, `""` is one quote and separators and line
 *   breaks are literal (a PEM block fits in one quoted cell).
 * - A UTF-8 byte order mark at the very start is dropped.
 * - Empty lines (nothing between two line breaks) are skipped; they are not records.
 * - A quote inside an unquoted field, text after a closing quote, and an unterminated quoted field
 *   are errors (`CsvError`, with the line and the 1-based field number), not guessed at: the
 *   cells carry key material, where a silent mis-split is worse than a refusal.
 *
 * Every record knows the physical line it starts on, so later checks can name `line 7`.
 */

export interface CsvRecord {
  /** 1-based line number where the record starts (a quoted field may span several lines). */
  readonly line: number;
  readonly fields: readonly string[];
}

export class CsvError extends Error {
  override readonly name = 'CsvError';
  constructor(
    /** 1-based line of the problem. */
    readonly line: number,
    /** 1-based field (column) number within its record. */
    readonly column: number,
    readonly reason: string,
  ) {
    super(`line ${line}, column ${column}: ${reason}`);
  }
}

const QUOTE = 0x22; // "
const COMMA = 0x2c; // ,
const CR = 0x0d;
const LF = 0x0a;

/** Parses CSV text into records. Throws CsvError on malformed quoting. */
export function parseCsv(input: string): CsvRecord[] {
  const text = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  const records: CsvRecord[] = [];
  const n = text.length;
  let i = 0;
  let line = 1;

  /** Consumes a line break at `i` if there is one (CRLF counts once); returns whether it did. */
  const lineBreak = (): boolean => {
    const c = text.charCodeAt(i);
    if (c === CR) {
      i += text.charCodeAt(i + 1) === LF ? 2 : 1;
      line++;
      return true;
    }
    if (c === LF) {
      i++;
      line++;
      return true;
    }
    return false;
  };

  while (i < n) {
    // An empty line is not a record.
    if (lineBreak()) continue;
    const startLine = line;
    const fields: string[] = [];
    for (;;) {
      const column = fields.length + 1;
      let value: string;
      if (text.charCodeAt(i) === QUOTE) {
        const openLine = line;
        i++;
        let out = '';
        let chunk = i;
        for (;;) {
          if (i >= n) throw new CsvError(openLine, column, 'a quoted field is not closed (missing ")');
          const c = text.charCodeAt(i);
          if (c === QUOTE) {
            if (text.charCodeAt(i + 1) === QUOTE) {
              out += text.slice(chunk, i + 1);
              i += 2;
              chunk = i;
              continue;
            }
            out += text.slice(chunk, i);
            i++;
            break;
          }
          if (c === CR) {
            // Line breaks inside quotes are kept as written, but still counted.
            if (text.charCodeAt(i + 1) === LF) i++;
            line++;
          } else if (c === LF) line++;
          i++;
        }
        value = out;
        const after = text.charCodeAt(i);
        if (i < n && after !== COMMA && after !== CR && after !== LF) {
          throw new CsvError(line, column, 'unexpected text after a closing quote (write "" for a quote inside a quoted field)');
        }
      } else {
        const start = i;
        while (i < n) {
          const c = text.charCodeAt(i);
          if (c === COMMA || c === CR || c === LF) break;
          if (c === QUOTE) throw new CsvError(line, column, 'a quote inside an unquoted field (quote the whole field and write "" for the quote)');
          i++;
        }
        value = text.slice(start, i);
      }
      fields.push(value);
      if (i < n && text.charCodeAt(i) === COMMA) {
        i++;
        continue;
      }
      break;
    }
    records.push({ line: startLine, fields });
    lineBreak();
  }
  return records;
}

/** Quotes a field for CSV output when it needs it (for tests and for writing example files). */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** One CSV record line (without the line break). */
export function csvLine(values: readonly string[]): string {
  return values.map(csvField).join(',');
}
