import { test } from 'vitest'
import { spin } from './helper.js'

test('spins like a runaway worker', () => spin())
