/** Sizes in messages and summaries: always MB (MiB, one decimal), so dry runs and summaries compare at a glance. */
export function megabytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MB`;
}
