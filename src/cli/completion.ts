/**
 * `sitewise-repartition completion bash|zsh`: a completion script made from
 * the program's own commands and options, so it never drifts from them. zsh
 * runs the bash one through bashcompinit.
 */
import type { Command } from 'commander';

export const SHELLS = ['bash', 'zsh'] as const;

const flagsOf = (cmd: Command) => cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => f !== undefined));

export function completionScript(program: Command, shell: (typeof SHELLS)[number]): string {
  const name = program.name();
  const fn = `_${name.replace(/[^a-zA-Z0-9]/g, '_')}`;
  const commands = program.commands.filter((c) => c.name() !== 'help');
  const words = commands.flatMap((c) => [c.name(), ...c.aliases()]);
  const cases = commands.map((c) => `    ${[c.name(), ...c.aliases()].join('|')}) opts="${[...flagsOf(c), '--help'].join(' ')}${c.name() === 'completion' ? ' bash zsh' : ''}" ;;`).join('\n');
  const bash = `${fn}() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" cmd="" opts="" w
  for w in "\${COMP_WORDS[@]:1:COMP_CWORD-1}"; do
    case "$w" in
      ${words.join('|')}) cmd="$w" ;;
    esac
  done
  case "$cmd" in
${cases}
    *) opts="${[...words, ...flagsOf(program), '--help', '--version'].join(' ')}" ;;
  esac
  COMPREPLY=( $(compgen -W "$opts" -- "$cur") )
}
complete -o default -F ${fn} ${name}
`;
  if (shell === 'bash') return `# bash completion for ${name}: add to ~/.bashrc\n#   source <(${name} completion bash)\n${bash}`;
  return `# zsh completion for ${name}: add to ~/.zshrc\n#   source <(${name} completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n${bash}`;
}
