// Short forms of the engine's container status line, for table cells.

/** "Up About an hour" → "1 hour"; "Up 3 minutes (healthy)" → "3 minutes". */
export function compactUptime(status: string): string {
  return status
    .replace(/^Up /, "")
    .replace(/ \((Paused|healthy|unhealthy|health: starting)\)$/, "")
    .replace(/^About an? /, "1 ")
    .replace(/^Less than a second$/, "just now");
}
