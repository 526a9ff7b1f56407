// Waiting in the lab: every "until it answers / until it arrives" goes through waitFor, with a
// deadline that names what it waited for when it runs out.

export function sleep(ms: number): Promise<void> {
    return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every `intervalMs` until it holds; returns the seconds it took. */
export async function waitFor(what: string, condition: () => boolean, timeoutMs: number, intervalMs = 250): Promise<number> {
    const start = Date.now();
    while (!condition()) {
        if (Date.now() - start > timeoutMs) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
        await sleep(intervalMs);
    }
    return (Date.now() - start) / 1000;
}
