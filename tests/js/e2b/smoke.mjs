// Driven by tests/docker/test_e2b.py: E2B's JavaScript SDK, unmodified, against the engine
// (E2B_API_KEY, E2B_API_URL and E2B_SANDBOX_URL come from the test). Prints one JSON line.
import { Sandbox } from '@e2b/code-interpreter'

const sandbox = await Sandbox.create({ timeoutMs: 120_000 })
try {
  await sandbox.runCode('x = 41')
  const stdout = []
  const execution = await sandbox.runCode('print("hi")\nx + 1', {
    onStdout: (m) => stdout.push(m.line),
  })
  await sandbox.files.write('/home/user/js.txt', 'from js')
  const file = await sandbox.files.read('/home/user/js.txt')
  const listed = (await sandbox.files.list('/home/user')).some((e) => e.name === 'js.txt')
  const command = await sandbox.commands.run('echo js command')
  const background = await sandbox.commands.run('sleep 300', { background: true })
  const running = (await sandbox.commands.list()).some((p) => p.pid === background.pid)
  const stopped = await background.kill()
  const context = await sandbox.createCodeContext()
  await sandbox.runCode('y = "ctx"', { context })
  const isolated = (await sandbox.runCode('"y" in dir()')).text
  const killed = await sandbox.kill()
  console.log(JSON.stringify({
    text: execution.text,
    stdout: stdout.join(''),
    file,
    listed,
    command: command.stdout,
    background: running && stopped,
    contextIsolated: isolated === 'False',
    killed,
  }))
} catch (err) {
  await sandbox.kill().catch(() => {})
  throw err
}
