package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// Usage mistakes are one line on stderr and exit status 2, as a Linux tool
// behaves; urfave/cli's own answers (help text, exit 0 or 3) are replaced
// here so every command group behaves the same.

// unknownCommand is the app's action: it runs only when no command matched.
func unknownCommand(c *cli.Context) error {
	if c.NArg() > 0 {
		return usagef("unknown command %q (offvm --help lists them)", c.Args().First())
	}
	cli.ShowAppHelp(c)
	return usagef("no command given")
}

// needSubcommand gives every command group (patch, reg, ...) an action
// that names the mistake when no known subcommand follows.
func needSubcommand(cmd *cli.Command) {
	if len(cmd.Subcommands) == 0 || cmd.Action != nil {
		return
	}
	var names []string
	for _, s := range cmd.Subcommands {
		if !s.Hidden {
			names = append(names, s.Name)
		}
	}
	list := strings.Join(names, ", ")
	cmd.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usagef("%s: unknown subcommand %q (one of: %s)", cmd.Name, c.Args().First(), list)
		}
		return usagef("%s needs a subcommand: %s", cmd.Name, list)
	}
}

// commandPath is the full name of the running command ("reg export"):
// urfave/cli's FullName omits the parent of a subcommand.
func commandPath(c *cli.Context) string {
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" {
			names = append([]string{ctx.Command.Name}, names...)
		}
	}
	// the app's root context carries a command named after the app
	if len(names) > 0 && names[0] == c.App.Name {
		names = names[1:]
	}
	return strings.Join(names, " ")
}

// setUsageHandlers routes every command's flag errors to exit status 2.
func setUsageHandlers(app *cli.App) {
	var walk func(cmds []*cli.Command)
	walk = func(cmds []*cli.Command) {
		for _, cmd := range cmds {
			cmd.OnUsageError = app.OnUsageError
			needSubcommand(cmd)
			walk(cmd.Subcommands)
		}
	}
	walk(app.Commands)
	app.Action = unknownCommand
}
