import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CommandLineError, splitCommandLine } from '../../src/exec/command-line.js';

test('words are split like a shell splits them, with nothing expanded', () => {
  assert.deepEqual(splitCommandLine('cat /proc/sys/crypto/fips_enabled'), ['cat', '/proc/sys/crypto/fips_enabled']);
  assert.deepEqual(splitCommandLine("  sh -c 'exit 3'  "), ['sh', '-c', 'exit 3']);
  assert.deepEqual(splitCommandLine('sh -c "echo $HOME | wc -c"'), ['sh', '-c', 'echo $HOME | wc -c']);
  assert.deepEqual(splitCommandLine('echo $HOME *.txt a|b >out'), ['echo', '$HOME', '*.txt', 'a|b', '>out']);
  assert.deepEqual(splitCommandLine(`echo "a \\"quoted\\" \\$word \\x" 'it'"'"'s'`), ['echo', 'a "quoted" $word \\x', "it's"]);
  assert.deepEqual(splitCommandLine('a\\ b c\\\nd'), ['a b', 'cd']);
  assert.deepEqual(splitCommandLine("'' \"\" x"), ['', '', 'x']);
  assert.deepEqual(splitCommandLine('one\ttwo\nthree'), ['one', 'two', 'three']);
  assert.deepEqual(splitCommandLine('   '), []);
});

test('unfinished quotes and escapes are errors', () => {
  assert.throws(() => splitCommandLine("sh -c 'echo"), CommandLineError);
  assert.throws(() => splitCommandLine('echo "x'), CommandLineError);
  assert.throws(() => splitCommandLine('echo \\'), CommandLineError);
});
