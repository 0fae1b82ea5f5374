package cli

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"
	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// bashCompletion asks the binary for the words that may follow the line
// typed so far (urfave's --generate-bash-completion), passing the word
// being completed when it is a flag.
const bashCompletion = `# bash completion for minik; load with: source <(minik completion bash)
_minik_complete() {
  local cur="${COMP_WORDS[COMP_CWORD]}" words
  if [[ "$cur" == -* ]]; then
    words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
  else
    words=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
  fi
  COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o bashdefault -o default -F _minik_complete minik
`

// zshCompletion is bashCompletion's zsh counterpart.
const zshCompletion = `#compdef minik
# zsh completion for minik; load with: source <(minik completion zsh)
_minik() {
  local cur=${words[CURRENT]}
  local -a opts
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:CURRENT-1} "$cur" --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:CURRENT-1} --generate-bash-completion 2>/dev/null)}")
  fi
  compadd -a opts
}
compdef _minik minik
`

// completionCommand prints a shell script that completes minik's command
// line: commands and flags from the app, and for the client verbs what
// kubectl completes (resource types and names of the live cluster).
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print a shell completion script (bash, zsh or fish)",
		ArgsUsage: "bash|zsh|fish",
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return cli.Exit("completion: name one shell: bash, zsh or fish", 2)
			}
			var script string
			switch shell := c.Args().First(); shell {
			case "bash":
				script = bashCompletion
			case "zsh":
				script = zshCompletion
			case "fish":
				s, err := c.App.ToFishCompletion()
				if err != nil {
					return err
				}
				script = s
			default:
				return cli.Exit(fmt.Sprintf("completion: unknown shell %q: want bash, zsh or fish", shell), 2)
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}

// verbComplete returns the completion of a client verb: kubectl's own
// (cobra's __complete) for the words after the verb, one candidate a line.
func verbComplete(verb string) cli.BashCompleteFunc {
	return func(c *cli.Context) {
		args := c.Args().Slice()
		if n := len(args); n == 0 || !strings.HasPrefix(args[n-1], "-") {
			args = append(args, "") // complete a new word
		}
		if verb != "" {
			args = append([]string{verb}, args...)
		}
		var out bytes.Buffer
		streams := genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &bytes.Buffer{}}
		if err := run(c.Context, streams, "minik", append([]string{"__complete"}, args...)); err != nil {
			return
		}
		for _, line := range strings.Split(out.String(), "\n") {
			if line == "" || strings.HasPrefix(line, ":") {
				continue // cobra's closing directive
			}
			word, _, _ := strings.Cut(line, "\t")
			fmt.Fprintln(c.App.Writer, word)
		}
	}
}
