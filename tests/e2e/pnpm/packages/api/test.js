// The api package's "test": start a dev server the way many suites do (detached, unref'd,
// so that this script can exit), check that it answers, and forget to stop it.
'use strict'
const { spawn } = require('node:child_process')
const { existsSync, readFileSync } = require('node:fs')
const http = require('node:http')
const path = require('node:path')

const state = process.env.E2E_STATE
const server = spawn(process.execPath, [path.join(__dirname, 'server.js')], {
  detached: true,
  stdio: 'ignore',
})
server.unref()

const ready = `${state}/ready.${server.pid}`
const giveUp = Date.now() + 15_000
const poll = setInterval(() => {
  if (existsSync(ready)) {
    clearInterval(poll)
    const port = readFileSync(ready, 'utf8').trim().split(' ')[4]
    http.get({ host: '127.0.0.1', port, path: '/' }, (res) => {
      console.log(`api: server ${server.pid} answered ${res.statusCode} on port ${port}`)
      process.exit(res.statusCode === 200 ? 0 : 1)
    })
  } else if (Date.now() > giveUp) {
    console.error(`api: server ${server.pid} never wrote ${ready}`)
    process.exit(1)
  }
}, 50)
