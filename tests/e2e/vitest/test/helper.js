// The bounded, marked behaviour of every vitest worker in the e2e suite (the protocol is
// in tests/e2e/README.md): announce once, then either hang or spin until scripts/e2e.sh
// creates $E2E_STATE/release (write late.<pid>, exit) or $E2E_LIFE seconds pass (exit).
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs'

const state = process.env.E2E_STATE
if (!state) throw new Error('E2E_STATE is not set: run this project through scripts/e2e.sh')
const lifeEnd = Date.now() + 1000 * Number(process.env.E2E_LIFE || 60)

function announce() {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'))
  const cgroup = line ? line.slice(3) : '-'
  const tmp = `${state}/.ready.${process.pid}`
  writeFileSync(tmp, `${process.pid} ${process.ppid} ${cgroup} ${process.env.CG_TEST_RUN_ID || '-'}\n`)
  renameSync(tmp, `${state}/ready.${process.pid}`)
}

function checkRelease() {
  if (existsSync(`${state}/release`)) {
    writeFileSync(`${state}/late.${process.pid}`, 'late\n')
    process.exit(0)
  }
  if (Date.now() >= lifeEnd) process.exit(0)
}

// A test that never settles: an open promise, with only a timer keeping the bounds.
export function hang() {
  announce()
  setInterval(checkRelease, 100)
  return new Promise(() => {})
}

// A runaway worker: a busy loop that pins a core and never yields to the event loop,
// so it cannot notice that its parent (and the IPC channel) went away.
export function spin() {
  announce()
  let next = 0
  for (;;) {
    const now = Date.now()
    if (now >= next) {
      checkRelease()
      next = now + 50
    }
  }
}
