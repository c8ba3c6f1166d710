/**
 * Checks that parsed JSON has the shape a reader expects, so a damaged or
 * hand-edited file is reported by its field (`objects[3].size: expected a
 * number, got "12"`) instead of failing later on an undefined. A checked value
 * is returned as it was parsed: fields the shape does not name are kept.
 */
export class ShapeError extends Error {
  constructor(readonly field: string, detail: string) {
    super(`${field === '' ? 'the document' : `field ${field}`}: ${detail}`);
    this.name = 'ShapeError';
  }
}

export type Shape<T> = (value: unknown, at: string) => T;

const show = (v: unknown) => (v === undefined ? 'nothing' : JSON.stringify(v).slice(0, 60));

function expect<T>(test: (v: unknown) => boolean, what: string): Shape<T> {
  return (value, at) => {
    if (!test(value)) throw new ShapeError(at, `expected ${what}, got ${show(value)}`);
    return value as T;
  };
}

export const string: Shape<string> = expect((v) => typeof v === 'string', 'a string');
/** A whole number of 0 or more (sizes, counts, versions). */
export const count: Shape<number> = expect((v) => Number.isSafeInteger(v) && (v as number) >= 0, 'a whole number of 0 or more');
export const boolean: Shape<boolean> = expect((v) => typeof v === 'boolean', 'true or false');

export function literal<T extends string | number>(expected: T): Shape<T> {
  return expect((v) => v === expected, JSON.stringify(expected));
}

export function optional<T>(shape: Shape<T>): Shape<T | undefined> {
  return (value, at) => (value === undefined ? undefined : shape(value, at));
}

export function arrayOf<T>(item: Shape<T>): Shape<T[]> {
  return (value, at) => {
    if (!Array.isArray(value)) throw new ShapeError(at, `expected a list, got ${show(value)}`);
    value.forEach((v, i) => item(v, `${at}[${i}]`));
    return value as T[];
  };
}

export function object<T>(fields: { [K in keyof T]-?: Shape<T[K]> }): Shape<T> {
  return (value, at) => {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ShapeError(at, `expected an object, got ${show(value)}`);
    for (const name of Object.keys(fields) as (keyof T & string)[]) fields[name]((value as Record<string, unknown>)[name], at === '' ? name : `${at}.${name}`);
    return value as T;
  };
}

/** `value` checked against `shape`; a ShapeError names the first field that is wrong. */
export function checkShape<T>(shape: Shape<T>, value: unknown): T {
  return shape(value, '');
}
