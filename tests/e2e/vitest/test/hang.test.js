import { test } from 'vitest'
import { hang } from './helper.js'

test('waits for a promise nobody resolves', () => hang())
