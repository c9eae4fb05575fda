// The tick-count benchmark's Node.js rows (benches/ticks.rs runs this when `node` is on the PATH).
//
// The seed article's n-th prime search (trial division by the known odd primes up to
// ceil(sqrt(n)), one candidate per unit of work, as executor::demo::prime) beside a
// setInterval(1 ms) that counts its ticks, cut as the strategy says:
//   sync         the whole search in one piece (blocks the loop);
//   every        findNthPrimeAsync: a setImmediate after every candidate;
//   batch:N      a setImmediate after every N candidates;
//   slice:US     a setImmediate once US microseconds of work have run (the clock read every
//                8 candidates, as executor's Slice reads it at most once per 8 units).
//
// usage: node benches/ticks_node.js NTH STRATEGY REPS
// Prints one JSON object per run: prime, elapsed_ms, cpu_ms, chunks, ticks (offsets in ms).
'use strict';

const [nth, strategy, reps] = [Number(process.argv[2]), process.argv[3], Number(process.argv[4] || 1)];
if (!(nth >= 1) || !strategy || !(reps >= 1)) {
  console.error('usage: node ticks_node.js NTH sync|every|batch:N|slice:US REPS');
  process.exit(2);
}

// Rosser's bound of the nth prime, as executor::demo::prime keeps only the divisors it needs.
function bound(n) {
  if (n < 6) return 11;
  return Math.ceil(n * (Math.log(n) + Math.log(Math.log(n)))) + 16;
}

function search(n) {
  const keepUpTo = Math.ceil(Math.sqrt(bound(n))) + 1;
  const divisors = [3];
  let found = 2, last = 3, candidate = 5;
  // One candidate test; returns the prime once found.
  return function step() {
    if (n === 1) return 2;
    if (n === 2) return 3;
    if (found >= n) return last;
    const c = candidate;
    candidate += 2;
    const limit = Math.ceil(Math.sqrt(c));
    for (const p of divisors) {
      if (p > limit) break;
      if (c % p === 0) return undefined;
    }
    found += 1;
    last = c;
    if (c <= keepUpTo) divisors.push(c);
    return found >= n ? c : undefined;
  };
}

function run(done) {
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const ticks = [];
  const iv = setInterval(() => ticks.push(performance.now() - t0), 1);
  const step = search(nth);
  let chunks = 0;
  const finish = (prime) => {
    const elapsed = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    clearInterval(iv);
    done({ prime, elapsed_ms: elapsed, cpu_ms: (cpu.user + cpu.system) / 1000, chunks, ticks });
  };
  const [kind, arg] = strategy.split(':');
  if (kind === 'sync') {
    let p;
    while ((p = step()) === undefined);
    chunks = 1;
    finish(p);
  } else if (kind === 'every') {
    // The seed's findNthPrimeAsync.
    const next = () => {
      chunks += 1;
      const p = step();
      if (p === undefined) setImmediate(next); else finish(p);
    };
    next();
  } else if (kind === 'batch') {
    const n = Number(arg);
    const next = () => {
      chunks += 1;
      for (let i = 0; i < n; i++) {
        const p = step();
        if (p !== undefined) return finish(p);
      }
      setImmediate(next);
    };
    next();
  } else if (kind === 'slice') {
    const ms = Number(arg) / 1000;
    const next = () => {
      chunks += 1;
      const start = performance.now();
      for (let i = 1; ; i++) {
        const p = step();
        if (p !== undefined) return finish(p);
        if (i % 8 === 0 && performance.now() - start >= ms) break;
      }
      setImmediate(next);
    };
    next();
  } else {
    console.error(`unknown strategy ${strategy}`);
    process.exit(2);
  }
}

let left = reps;
const again = () => run((r) => {
  console.log(JSON.stringify(r));
  if (--left > 0) setImmediate(again);
});
again();
