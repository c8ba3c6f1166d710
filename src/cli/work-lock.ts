import { mkdir, open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { FatalError } from '../shared/errors.js';

export const LOCK_FILE = '.sitewise-repartition.lock';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * One run at a time per work dir, so overlapping cron runs do not race on the
 * same local folders or the same day's ledger. A lock left by a process that
 * died (kill -9, reboot) is taken over.
 */
export async function acquireWorkLock(workDir: string): Promise<() => Promise<void>> {
  await mkdir(workDir, { recursive: true });
  const file = path.join(workDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(String(process.pid));
      await fh.close();
      // a stop signal winds the run down through its finally blocks, which call this; a process
      // that dies without them leaves a lock whose pid is gone, and the next run takes it over
      return () => rm(file, { force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (pid > 0 && pid !== process.pid && alive(pid)) {
        throw new FatalError(`another sitewise-repartition (pid ${pid}) is working in ${workDir}; wait for it, or remove ${file} if it is not running`);
      }
      await rm(file, { force: true });
    }
  }
  throw new FatalError(`could not take the lock ${file}`);
}
