// A dev server on a loopback port with a bounded life (protocol: tests/e2e/README.md):
// announces itself with its port, exits when $E2E_STATE/release appears (after writing
// late.<pid>) or after $E2E_LIFE seconds.
'use strict'
const { existsSync, readFileSync, renameSync, writeFileSync } = require('node:fs')
const http = require('node:http')

const state = process.env.E2E_STATE
const lifeEnd = Date.now() + 1000 * Number(process.env.E2E_LIFE || 60)

const server = http.createServer((req, res) => res.end('ok\n'))
server.listen(0, '127.0.0.1', () => {
  const line = readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::'))
  const cgroup = line ? line.slice(3) : '-'
  const runId = process.env.CG_TEST_RUN_ID || '-'
  const tmp = `${state}/.ready.${process.pid}`
  writeFileSync(tmp, `${process.pid} ${process.ppid} ${cgroup} ${runId} ${server.address().port}\n`)
  renameSync(tmp, `${state}/ready.${process.pid}`)
})

setInterval(() => {
  if (existsSync(`${state}/release`)) {
    writeFileSync(`${state}/late.${process.pid}`, 'late\n')
    process.exit(0)
  }
  if (Date.now() >= lifeEnd) process.exit(0)
}, 100)
