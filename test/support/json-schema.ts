/**
 * A small JSON Schema checker for the keywords docs/events.schema.json uses
 * (type, const, enum, pattern, minimum, required, properties,
 * additionalProperties: false, items, oneOf, $ref to #/$defs): enough to hold
 * the tool's real output against the file, with a path to what is wrong.
 */
type Schema = Record<string, unknown>;

export function validate(schema: Schema, value: unknown, root: Schema = schema, at = '$'): string[] {
  if (typeof schema.$ref === 'string') return validate((root.$defs as Record<string, Schema>)[schema.$ref.replace('#/$defs/', '')]!, value, root, at);
  const problems: string[] = [];
  if (Array.isArray(schema.oneOf)) {
    const results = (schema.oneOf as Schema[]).map((s) => validate(s, value, root, at));
    const passing = results.filter((r) => r.length === 0).length;
    if (passing !== 1) problems.push(`${at}: matches ${passing} of oneOf (closest: ${results.sort((a, b) => a.length - b.length)[0]!.join('; ')})`);
    return problems;
  }
  if ('const' in schema && value !== schema.const) problems.push(`${at}: ${JSON.stringify(value)} is not ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value)) problems.push(`${at}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`);
  const type = schema.type as string | undefined;
  const is = {
    string: typeof value === 'string',
    number: typeof value === 'number',
    integer: Number.isInteger(value),
    boolean: typeof value === 'boolean',
    null: value === null,
    array: Array.isArray(value),
    object: typeof value === 'object' && value !== null && !Array.isArray(value),
  } as Record<string, boolean>;
  if (type && !is[type]) return [...problems, `${at}: ${JSON.stringify(value)} is not of type ${type}`];
  if (typeof schema.pattern === 'string' && typeof value === 'string' && !new RegExp(schema.pattern).test(value)) problems.push(`${at}: '${value}' does not match ${schema.pattern}`);
  if (typeof schema.minimum === 'number' && typeof value === 'number' && value < schema.minimum) problems.push(`${at}: ${value} is below ${schema.minimum}`);
  if (is.object && (schema.properties || schema.required)) {
    const object = value as Record<string, unknown>;
    const properties = (schema.properties ?? {}) as Record<string, Schema>;
    for (const key of (schema.required ?? []) as string[]) if (!(key in object)) problems.push(`${at}: ${key} is missing`);
    for (const [key, v] of Object.entries(object)) {
      if (properties[key]) problems.push(...validate(properties[key], v, root, `${at}.${key}`));
      else if (schema.additionalProperties === false) problems.push(`${at}: ${key} is not in the schema`);
    }
  }
  if (is.array && schema.items) (value as unknown[]).forEach((v, i) => problems.push(...validate(schema.items as Schema, v, root, `${at}[${i}]`)));
  return problems;
}
