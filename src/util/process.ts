// Questions about other processes.

/** Whether a process with this pid runs on this host (one we may not signal, EPERM, runs too). */
export function pidAlive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
