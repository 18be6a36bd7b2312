// Splits an ExecuteCommand `command` string into argv the way a POSIX shell splits words,
// without running a shell: blanks separate words; 'single quotes' keep everything
// literally; "double quotes" keep everything but let a backslash escape $ ` " \ and newline;
// a backslash outside quotes escapes the next character (and joins lines). Nothing is
// expanded — no variables, globs, pipes or redirections — as with ECS Exec, where
// `--command "sh -c 'ls | wc -l'"` is how a pipeline is run.

export class CommandLineError extends Error {}

export function splitCommandLine(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) { words.push(word); word = ''; inWord = false; }
      i++;
      continue;
    }
    inWord = true;
    if (c === '\\') {
      if (i + 1 >= n) throw new CommandLineError('the command ends with an unfinished backslash escape');
      if (text[i + 1] !== '\n') word += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new CommandLineError('the command has an unterminated single quote');
      word += text.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (c === '"') {
      i++;
      for (;;) {
        if (i >= n) throw new CommandLineError('the command has an unterminated double quote');
        const d = text[i]!;
        if (d === '"') { i++; break; }
        if (d === '\\' && i + 1 < n && '$`"\\\n'.includes(text[i + 1]!)) {
          if (text[i + 1] !== '\n') word += text[i + 1];
          i += 2;
          continue;
        }
        word += d;
        i++;
      }
      continue;
    }
    word += c;
    i++;
  }
  if (inWord) words.push(word);
  return words;
}
