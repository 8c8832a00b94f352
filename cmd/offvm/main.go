// Command offvm manages offline VM disk images from their files alone.
// This package holds flags and output only; the work is in the packages.
package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/urfave/cli/v2"
)

// usageError marks mistakes in how offvm was called: exit status 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, a ...any) error { return usageError{fmt.Sprintf(format, a...)} }

func main() {
	app := &cli.App{
		Name:  "offvm",
		Usage: "manage offline VM disk images (VHD, VHDX, VMDK, qcow2, raw) from their files alone",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "log what offvm does to stderr"},
			&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bars, even on a terminal"},
		},
		Before: func(c *cli.Context) error {
			level := slog.LevelError + 4 // quiet: errors are printed by main
			if c.Bool("verbose") {
				level = slog.LevelDebug
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
			return nil
		},
		OnUsageError: func(c *cli.Context, err error, _ bool) error {
			return usageError{err.Error()}
		},
		Commands: []*cli.Command{
			mountCommand(), unmountCommand(), lsCommand(), inspectCommand(),
			regCommand(), patchCommand(), withRollbackTo(rollbackCommand()), checkCommand(), reportCommand(), logCommand(), diffCommand(), updatesCommand(),
			docsCommand(),
		},
		EnableBashCompletion: true,
		ExitErrHandler:       func(*cli.Context, error) {},
	}
	addKeysFlag(app.Commands, "")
	setUsageHandlers(app)
	args := os.Args
	if isMountHelper(args[0]) {
		var err error
		if args, err = helperArgs(args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "offvm: "+err.Error())
			os.Exit(2)
		}
	}
	stop := startProfile()
	code := run(app, args, os.Stderr)
	stop()
	os.Exit(code)
}

func run(app *cli.App, args []string, stderr io.Writer) int {
	err := app.Run(args)
	if err == nil {
		return 0
	}
	fmt.Fprintln(stderr, "offvm: "+strings.TrimSpace(err.Error()))
	var ue usageError
	if errors.As(err, &ue) || strings.HasPrefix(err.Error(), "flag provided but not defined") {
		return 2
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		return ec.ExitCode()
	}
	return 1
}

// needArgs checks the count of positional arguments.
func needArgs(c *cli.Context, min, max int, what string) error {
	n := c.NArg()
	if n < min || (max >= 0 && n > max) {
		return usagef("usage: offvm %s %s", commandPath(c), what)
	}
	return nil
}
